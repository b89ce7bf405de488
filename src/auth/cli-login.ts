import { createHash } from 'node:crypto';
import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { insertCliLoginCode, spendCliLoginCode, type Executor } from '../store/index.js';
import type { CliLoginRequest } from './oidc.js';
import { hashSecret, newSecret, SECRET_SHAPE, sameSecret } from './secrets.js';

/** A code handed to the CLI's loopback listener is good for this long, once. */
const CODE_TTL_MS = 2 * 60_000;

/** What `lapse login` sends to /auth/cli: its loopback port, its state, and an S256 PKCE challenge. */
export const cliLoginRequestSchema = z
  .object({
    port: z.coerce.number().int().min(1024).max(65535),
    state: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'state is 16 to 128 base64url characters'),
    code_challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'code_challenge is an S256 PKCE challenge (43 base64url characters)'),
  })
  .strict();

export function toCliLoginRequest(query: z.output<typeof cliLoginRequestSchema>): CliLoginRequest {
  return { port: query.port, state: query.state, codeChallenge: query.code_challenge };
}

/** Where the browser goes after sign-in: the CLI's listener on this machine, never anywhere else. */
export function loopbackRedirect(cli: CliLoginRequest, code: string): string {
  const url = new URL(`http://127.0.0.1:${cli.port}/callback`);
  url.searchParams.set('code', code);
  url.searchParams.set('state', cli.state);
  return url.href;
}

export async function issueCliLoginCode(tx: Executor, input: { userId: string; codeChallenge: string }, now: Date): Promise<string> {
  const code = newSecret();
  await insertCliLoginCode(
    tx,
    {
      code_hash: hashSecret(code),
      user_id: input.userId,
      code_challenge: input.codeChallenge,
      created_at: now,
      expires_at: new Date(now.getTime() + CODE_TTL_MS),
      used_at: null,
    },
    new Date(now.getTime() - CODE_TTL_MS),
  );
  return code;
}

/**
 * Trades a code for the user it was issued to: once, before it expires, and only with the PKCE
 * verifier whose S256 hash the CLI sent at the start (a code seen by anyone else is useless). The
 * code is spent by the attempt, right or wrong: call it outside a transaction that could roll back.
 */
export async function redeemCliLoginCode(db: Executor, input: { code: string; codeVerifier: string }): Promise<string> {
  const refuse = () =>
    new LapseError('unauthenticated', 'the sign-in code is not valid (unknown, used, expired, or the verifier does not match)', {
      hint: 'Run `lapse login` again.',
    });
  if (!SECRET_SHAPE.test(input.code)) throw refuse();
  const row = await spendCliLoginCode(db, hashSecret(input.code));
  if (!row) throw refuse();
  const challenge = createHash('sha256').update(input.codeVerifier).digest('base64url');
  if (!sameSecret(challenge, row.code_challenge)) throw refuse();
  return row.user_id;
}
