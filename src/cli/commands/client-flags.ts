import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../../domain/duration.js';
import { LapseError } from '../../domain/errors.js';
import { isId } from '../../domain/ids.js';
import { MAX_PARAMETER_LENGTH, MAX_PARAMETERS, MAX_TICKET_LENGTH, NAME_PATTERN, PARAMETER_NAME_PATTERN } from '../../domain/input-schemas.js';
import { controlCharacterProblem } from '../../domain/text.js';
import { LapseClient, resolveConnection } from '../client.js';
import type { GlobalOptions } from '../output.js';
import { askForTotpCode } from './client-prompt.js';

/**
 * Checking what the user typed, before any network call: every flag is bounded and a bad one is a
 * usage error (exit 2) that names the flag and shows a correct form.
 */

const usage = (message: string, where: string, hint?: string) => new LapseError('validation_failed', message, { where, ...(hint ? { hint } : {}) });

/** Options every client command takes, besides the global --json. */
export interface ClientFlags extends GlobalOptions {
  server?: string;
  token?: string;
  mfaCode?: string;
}

export function addClientOptions(command: Command): Command {
  return command
    .option('--server <url>', 'Lapse server (default: the one you signed in to, or LAPSE_SERVER)')
    .option('--token <token>', 'API token to use instead of the saved sign-in (prefer LAPSE_TOKEN: flags show in `ps`)');
}

export function addStepUpOption(command: Command): Command {
  return command.option('--mfa-code <code>', 'authenticator app code, used if the server asks for a second factor');
}

/** A client for the command's flags; a step-up asks for a code on a terminal, or uses --mfa-code. */
export function clientFor(flags: ClientFlags): LapseClient {
  const mfaCode = flags.mfaCode !== undefined ? totpCode(flags.mfaCode) : undefined;
  const connection = resolveConnection({
    ...(flags.server !== undefined ? { server: flags.server } : {}),
    ...(flags.token !== undefined ? { token: flags.token } : {}),
  });
  return new LapseClient(connection, { stepUp: async () => mfaCode ?? (await askForTotpCode()) });
}

export function totpCode(value: string): string {
  if (!/^\d{6,8}$/.test(value))
    throw usage('the MFA code is not 6 to 8 digits', '--mfa-code', 'Type the code your authenticator app shows now, e.g. --mfa-code 123456.');
  return value;
}

/** `<target>/<entitlement>`, both lower-case names as in lapse.yaml. */
export function entitlementRef(value: string): { target: string; entitlement: string } {
  const [target, entitlement, ...rest] = value.split('/');
  if (rest.length > 0 || !target || !entitlement || !NAME_PATTERN.test(target) || !NAME_PATTERN.test(entitlement)) {
    throw usage(
      `"${value.slice(0, 80)}" is not <target>/<entitlement>`,
      '<target>/<entitlement>',
      'Write it as in lapse.yaml, e.g. prod-db/readonly (`lapse ls` and the portal list what you may request).',
    );
  }
  return { target, entitlement };
}

export function duration(value: string, where: string, maxMs?: number): string {
  const ms = parseDuration(value, where);
  if (maxMs !== undefined && ms > maxMs) throw usage(`${where} ${value} is longer than the ${maxMs / 3_600_000} h this command waits at most`, where);
  return value.trim();
}

/** Free text the server stores (reason, comment): trimmed, non-empty, bounded. */
export function text(value: string | undefined, where: string, max: number, required: boolean): string | undefined {
  if (value === undefined) {
    if (required) throw usage(`${where} is required`, where, `Say why, e.g. ${where} "INC-1234: investigating slow queries".`);
    return undefined;
  }
  const trimmed = value.trim();
  if (trimmed.length === 0) throw usage(`${where} is empty`, where);
  if (trimmed.length > max) throw usage(`${where} is ${trimmed.length} characters; at most ${max}`, where);
  const problem = controlCharacterProblem(trimmed, { multiline: true });
  if (problem) throw usage(`${where} ${problem}`, where);
  return trimmed;
}

export function ticket(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // NB. Visible ASCII only, as a ticket key is; the length is the server's (domain/input-schemas).
  if (value.length > MAX_TICKET_LENGTH || !/^[\x21-\x7e]+$/.test(value))
    throw usage(
      `"${value.slice(0, 40)}" is not a ticket reference`,
      '--ticket',
      `Use the ticket key, e.g. --ticket OPS-1234 (1 to ${MAX_TICKET_LENGTH} visible characters, no spaces).`,
    );
  return value;
}

/** Repeated `--param key=value` into an object; keys once each, values bounded. */
export function parameters(pairs: readonly string[]): Record<string, string> {
  if (pairs.length > MAX_PARAMETERS) throw usage(`${pairs.length} parameters; at most ${MAX_PARAMETERS}`, '--param');
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const key = at === -1 ? pair : pair.slice(0, at);
    if (at === -1 || !PARAMETER_NAME_PATTERN.test(key))
      throw usage(
        `"${pair.slice(0, 80)}" is not key=value`,
        '--param',
        'Write e.g. --param schema=public (keys: letters, digits and _, starting with a letter).',
      );
    if (Object.hasOwn(out, key)) throw usage(`parameter ${key} is given twice`, '--param');
    const value = pair.slice(at + 1);
    if (value.length > MAX_PARAMETER_LENGTH) throw usage(`parameter ${key} is longer than ${MAX_PARAMETER_LENGTH} characters`, '--param');
    out[key] = value;
  }
  return out;
}

/**
 * `--ssh-key ~/.ssh/id_ed25519.pub`: the public key the ssh connector certifies. A private key is
 * refused before anything is sent: it must never leave the machine.
 */
export function sshPublicKey(path: string): string {
  const file = resolve(path.replace(/^~(?=$|\/)/, homedir()));
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw usage(`cannot read ${path}`, '--ssh-key', 'Point it at your public key, e.g. ~/.ssh/id_ed25519.pub (make one with ssh-keygen -t ed25519).');
  }
  if (size > 16_384) throw usage(`${path} is ${size} bytes; an SSH public key is far smaller`, '--ssh-key');
  const content = readFileSync(file, 'utf8');
  if (/PRIVATE KEY/.test(content)) {
    throw usage(`${path} is a PRIVATE key; it was not sent`, '--ssh-key', `Pass the public half instead: ${path.endsWith('.pub') ? path : `${path}.pub`}.`);
  }
  const key = content.trim();
  if (!/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( [^\r\n]*)?$/.test(key)) {
    throw usage(`${path} is not an OpenSSH public key (one line, "ssh-ed25519 AAAA… comment")`, '--ssh-key');
  }
  return key;
}

export function limit(value: string | undefined, where = '--limit', max = 200): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d{1,4}$/.test(value) || !Number.isInteger(n) || n < 1 || n > max) throw usage(`${where} must be a whole number from 1 to ${max}`, where);
  return n;
}

export function requestOrGrantId(value: string, where: string): { kind: 'request' | 'grant'; id: string } {
  if (isId('request', value)) return { kind: 'request', id: value };
  if (isId('grant', value)) return { kind: 'grant', id: value };
  throw usage(`"${value.slice(0, 80)}" is not a request or grant id`, where, 'Ids look like req_01j… (requests) or grt_01j… (grants); `lapse ls` lists yours.');
}

export function idOf(kind: 'request' | 'grant', value: string, where: string): string {
  if (isId(kind, value)) return value;
  const example = kind === 'request' ? 'req_01j…' : 'grt_01j…';
  throw usage(
    `"${value.slice(0, 80)}" is not a ${kind} id`,
    where,
    `${kind === 'request' ? 'Request' : 'Grant'} ids look like ${example}; \`lapse ls\` lists yours.`,
  );
}

export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], where: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw usage(`${where} must be one of ${allowed.join(', ')}`, where);
  return value as T;
}

/**
 * `--since 1h` (that long ago, by the server's clock) or an ISO-8601 time; checked here, passed on
 * as written.
 */
export function since(value: string | undefined, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (/^\d+[a-z]/.test(value)) {
    parseDuration(value, where);
    return value;
  }
  if (value.length <= 40 && /^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))) return value;
  throw usage(`"${value.slice(0, 40)}" is neither a duration nor an ISO-8601 time`, where, 'Write e.g. 1h (one hour ago), 7d, or 2025-01-31T12:00:00Z.');
}

/** Free-form filter values passed to the API (actor, subject, action): bounded, no control characters. */
export function filter(value: string | undefined, where: string, max = 256): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > max || !/^[\x21-\x7e]+$/.test(value))
    throw usage(`${where} must be 1 to ${max} visible characters without spaces`, where);
  return value;
}
