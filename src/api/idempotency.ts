import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LapseError } from '../domain/errors.js';
import { failpoint, type Engine } from '../engine/index.js';
import type { Caller } from './authenticate.js';

/** How long a key is remembered; a retry after that is a new request. */
const KEY_TTL_MS = 24 * 60 * 60 * 1000;
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/**
 * Runs a POST at most once per `Idempotency-Key` (per caller): a retry with the same key and body
 * gets the first response again (with `Idempotent-Replayed: true`); the same key with a different
 * request is refused. Errors are not remembered, so a corrected retry with the same key goes through.
 *
 * `act` is the one use-case the route calls; `render` turns what it returned into the response
 * body, and must not read anything else (it runs inside the use-case's transaction).
 *
 * NB. The key and the response are written in the use-case's own transaction (see
 * Engine.withSameTransactionWrite), not claimed beforehand: a crash at any moment leaves either
 * the change with its stored response, or neither. The retry after a crash then replays or runs
 * the request, never both and never "still being processed" until the key expires. Two attempts
 * racing with one key both run; the second to commit hits the key's primary key, is rolled back
 * whole, and answers with the first one's stored response.
 */
export async function idempotent<V, B>(
  engine: Engine,
  request: FastifyRequest,
  reply: FastifyReply,
  caller: Caller,
  status: number,
  act: () => Promise<V>,
  render: (value: V) => B,
): Promise<B> {
  const header = request.headers['idempotency-key'];
  if (header === undefined) {
    const body = render(await act());
    reply.code(status);
    return body;
  }
  const key = Array.isArray(header) ? (header[0] ?? '') : header;
  if (!KEY_PATTERN.test(key)) {
    throw new LapseError('validation_failed', 'Idempotency-Key must be 1-200 printable ASCII characters', {
      where: 'Idempotency-Key',
      hint: 'Use a random UUID per logical request.',
    });
  }
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([request.method, request.routeOptions.url ?? '', request.params ?? null, request.body ?? null]))
    .digest('hex');
  const principalId = caller.principal.id;

  // Keys older than the TTL are forgotten: this caller's are swept here (the primary key's prefix
  // finds them), so the table holds about one day of each caller's keys and an old key can be
  // reused. A row without a response is a claim left by a version of Lapse before this scheme.
  await engine.idempotencyKeys.forgetOlderThan(principalId, KEY_TTL_MS);
  const stored = await storedResponse<B>(engine, principalId, key, fingerprint);
  if (stored) return replay(reply, stored);
  failpoint('idempotency:after-lookup');

  let body: B | undefined;
  try {
    await engine.withSameTransactionWrite(async (tx, value) => {
      body = render(value as V);
      await engine.idempotencyKeys.record(tx, { principalId, key, fingerprint, status, body: JSON.stringify(body) });
      failpoint('idempotency:before-commit');
    }, act);
  } catch (error) {
    if (!isKeyTaken(error)) throw error;
    // The same key committed first (a concurrent retry): this attempt was rolled back whole.
    const first = await storedResponse<B>(engine, principalId, key, fingerprint);
    if (!first) throw error;
    return replay(reply, first);
  }
  failpoint('idempotency:after-commit');
  if (body === undefined) {
    // NB. Every route given here changes state in one transaction; one that changed nothing has
    // nothing to remember, and a retry simply runs it again.
    throw new LapseError('internal', 'the request completed without a change to record its Idempotency-Key with', { where: 'Idempotency-Key' });
  }
  reply.code(status);
  return body;
}

interface StoredResponse<B> {
  readonly status: number;
  readonly body: B;
}

/** The response stored under this caller's key, or null; the same key for another request is refused. */
async function storedResponse<B>(engine: Engine, principalId: string, key: string, fingerprint: string): Promise<StoredResponse<B> | null> {
  const row = await engine.idempotencyKeys.find(principalId, key);
  if (!row) return null;
  if (row.fingerprint !== fingerprint) {
    throw new LapseError('conflict', 'this Idempotency-Key was already used for a different request', {
      where: 'Idempotency-Key',
      hint: 'Use a new key for each distinct request.',
    });
  }
  return { status: row.status, body: JSON.parse(row.body) as B };
}

function replay<B>(reply: FastifyReply, stored: StoredResponse<B>): B {
  reply.code(stored.status).header('idempotent-replayed', 'true');
  return stored.body;
}

/** A unique violation on the idempotency key (SQLSTATE 23505 on its primary key). */
function isKeyTaken(error: unknown): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && e.constraint === 'idempotency_keys_pkey';
}
