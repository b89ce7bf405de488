import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { LapseError } from '../domain/errors.js';
import type { Engine } from '../engine/index.js';
import type { Caller } from './authenticate.js';

/** How long a key is remembered; a retry after that is a new request. */
const KEY_TTL_MS = 24 * 60 * 60 * 1000;
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/**
 * Runs a POST at most once per `Idempotency-Key` (per caller): a retry with the same key and body
 * gets the first response again (with `Idempotent-Replayed: true`); the same key with a different
 * request is refused; a retry while the first is still running is told to wait. Errors are not
 * remembered, so a corrected retry with the same key goes through.
 */
export async function idempotent<T>(engine: Engine, request: FastifyRequest, reply: FastifyReply, caller: Caller, status: number, run: () => Promise<T>): Promise<T> {
  const header = request.headers['idempotency-key'];
  if (header === undefined) {
    reply.code(status);
    return run();
  }
  const key = Array.isArray(header) ? header[0] ?? '' : header;
  if (!KEY_PATTERN.test(key)) {
    throw new LapseError('validation_failed', 'Idempotency-Key must be 1-200 printable ASCII characters', { where: 'Idempotency-Key', hint: 'Use a random UUID per logical request.' });
  }
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([request.method, request.routeOptions.url ?? '', request.params ?? null, request.body ?? null]))
    .digest('hex');
  const db = engine.store.db;
  const principalId = caller.principal.id;
  const claimed = await db.transaction().execute(async (tx) => {
    // Keys older than the TTL are forgotten: this caller's are swept here (the primary key's prefix
    // finds them), so the table holds about one day of each caller's keys and an old key can be reused.
    await tx.deleteFrom('idempotency_keys').where('principal_id', '=', principalId).where('created_at', '<', sql<Date>`now() - ${`${KEY_TTL_MS} milliseconds`}::interval`).execute();
    const inserted = await tx
      .insertInto('idempotency_keys')
      .values({ principal_id: principalId, key, fingerprint, status: null, body: null, created_at: sql<Date>`now()` })
      .onConflict((oc) => oc.columns(['principal_id', 'key']).doNothing())
      .returning('key')
      .executeTakeFirst();
    if (inserted) return null;
    return tx.selectFrom('idempotency_keys').selectAll().where('principal_id', '=', principalId).where('key', '=', key).executeTakeFirstOrThrow();
  });
  if (claimed) {
    if (claimed.fingerprint !== fingerprint) {
      throw new LapseError('conflict', 'this Idempotency-Key was already used for a different request', { where: 'Idempotency-Key', hint: 'Use a new key for each distinct request.' });
    }
    if (claimed.status === null || claimed.body === null) {
      throw new LapseError('conflict', 'a request with this Idempotency-Key is still being processed', { where: 'Idempotency-Key', hint: 'Retry in a moment to get its result.' });
    }
    reply.code(claimed.status).header('idempotent-replayed', 'true');
    return JSON.parse(claimed.body) as T;
  }
  try {
    const result = await run();
    reply.code(status);
    await db.updateTable('idempotency_keys').set({ status, body: JSON.stringify(result) }).where('principal_id', '=', principalId).where('key', '=', key).execute();
    return result;
  } catch (error) {
    await db.deleteFrom('idempotency_keys').where('principal_id', '=', principalId).where('key', '=', key).execute();
    throw error;
  }
}
