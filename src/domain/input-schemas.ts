import { z } from 'zod';
import { MAX_DURATION_MS } from './duration.js';
import { ID_PREFIXES, type IdKind } from './ids.js';
import { boundedText } from './text.js';

/**
 * The input fields every door shares: the engine's use-case inputs, the API's request bodies and
 * queries, the CLI's flags and lapse.yaml are built from these, so one value is refused (or
 * accepted) the same way everywhere. Wire formats differ only where the door does (the API takes a
 * duration as text, the engine as milliseconds).
 */

/**
 * Target, entitlement, connector and policy names, as lapse.yaml spells them: a lower-case letter
 * or digit, then letters, digits, "_", "." or "-", at most 63 characters.
 */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export const resourceName = z.string().min(1).max(63).regex(NAME_PATTERN, 'must be lower-case letters, digits, "_", "." or "-"');

/** Any Lapse id (`req_…`, `grt_…`), as use-cases take them. */
export const anyId = z
  .string()
  .min(5)
  .max(64)
  .regex(/^[a-z]{3}_[0-9a-z]+$/, 'is not a Lapse id');

/** An id of one kind, as a path parameter names it (`/requests/{id}` takes a `req_` id). */
export function idOf(kind: IdKind) {
  const prefix = ID_PREFIXES[kind];
  return z
    .string()
    .max(64)
    .regex(new RegExp(`^${prefix}_[0-9a-z]{1,60}$`), `must be a ${prefix}_ id`);
}

export const MAX_REASON_LENGTH = 2000;
export const MAX_COMMENT_LENGTH = 2000;
export const MAX_TICKET_LENGTH = 200;
export const MAX_PARAMETER_LENGTH = 8192;

/** Why access is wanted (or ended): required where the use-case needs one, multi-line. */
export const reasonText = boundedText(MAX_REASON_LENGTH, { multiline: true });
/** A reviewer's comment, multi-line. */
export const commentText = boundedText(MAX_COMMENT_LENGTH, { multiline: true });
/** A ticket reference (checked against the entitlement's ticket pattern by policy). */
export const ticketText = boundedText(MAX_TICKET_LENGTH);
/** A duration as people write it (30m, 1h, 1h30m); parsed with parseDuration. */
export const durationText = boundedText(20).min(2).describe('A duration such as 30m, 1h, 1h30m');
/** A duration in milliseconds, within the longest any grant may last. */
export const durationMs = z.number().int().positive().max(MAX_DURATION_MS);

/** Names of connector parameters (sshPublicKey...). */
export const PARAMETER_NAME_PATTERN = /^[a-zA-Z][a-zA-Z0-9_]{0,62}$/;
export const MAX_PARAMETERS = 16;

/** Connector parameters (an SSH public key...): a few short named values, not secrets. */
export const connectorParameters = z
  .record(z.string().regex(PARAMETER_NAME_PATTERN, 'parameter names are letters, digits and "_"'), boundedText(MAX_PARAMETER_LENGTH))
  .refine((value) => Object.keys(value).length <= MAX_PARAMETERS, `at most ${MAX_PARAMETERS} parameters`);
