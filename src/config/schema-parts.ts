import { z } from 'zod';
import { parseDuration } from '../domain/duration.js';
import { NAME_PATTERN } from '../domain/input-schemas.js';
import { boundedText } from '../domain/text.js';

/** The building blocks of the lapse.yaml schema (schema.ts), shared by its sections in other files. */
export const name = (what: string) =>
  z.string().max(63).regex(NAME_PATTERN, `${what} names use lower-case letters, digits, "_", "." and "-" (max 63 characters)`);
/** Text that may span lines (descriptions, CEL, PEM setting values); one-line values use boundedText(max). */
export const text = (max: number) => boundedText(max, { multiline: true });
export const principalName = boundedText(256).min(1);

export const duration = z
  .string()
  .max(32)
  .transform((value, ctx) => {
    try {
      return parseDuration(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration: write e.g. 30m, 1h, 1h30m, 7d` });
      return z.NEVER;
    }
  });

export const subjectSet = z
  .object({
    users: z.array(principalName).max(1000).default([]),
    groups: z.array(principalName).max(1000).default([]),
  })
  .strict()
  .prefault({});

export const entitlementPattern = z
  .string()
  .max(130)
  .regex(/^(\*|(\*|[a-z0-9][a-z0-9_.-]*)\/(\*|[a-z0-9][a-z0-9_.-]*))$/, 'write target/entitlement, target/*, */entitlement or *');
