import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { NoopConnector } from '../src/connectors/index.js';
import { openStore } from '../src/store/index.js';
import { alice, startEngine, waitFor } from './support/engine.js';
import { createServerDatabase, describeEachStore } from './support/stores.js';
import { offline } from './support/environment.js';

describe.skipIf(offline())('several engines on one PostgreSQL', () => {
  it('share the work: every grant provisioned and revoked once, none missed', async () => {
    const database = await createServerDatabase();
    const stores = [await openStore({ databaseUrl: database.url }), await openStore({ databaseUrl: database.url })];
    const noop = new NoopConnector(); // one target seen by both replicas
    const engines = [await startEngine(stores[0]!, { noop }), await startEngine(stores[1]!, { noop })];
    try {
      const count = 120;
      const grantIds: string[] = [];
      for (let i = 0; i < count; i++) {
        const { engine } = engines[i % 2]!;
        const { request } = await engine.submit({
          principal: { ...alice, id: `user-${i}` },
          target: 'prod-db',
          entitlement: 'readonly',
          durationMs: 500 + (i % 10) * 100,
          reason: 'replicas',
        });
        grantIds.push(request.grantId!);
      }
      await waitFor(
        () => stores[0]!.db.selectFrom('grants').select('status').where('id', 'in', grantIds).execute(),
        (rows) => rows.every((r) => r.status === 'revoked'),
        30_000,
      );
      for (const id of grantIds) {
        const calls = noop.calls.filter((c) => c.grantId === id);
        expect(calls.filter((c) => c.op === 'provision')).toHaveLength(1);
        expect(calls.filter((c) => c.op === 'revoke')).toHaveLength(1);
      }
      const workers = await stores[0]!.db.selectFrom('connector_attempts').select('worker').distinct().execute();
      expect(workers.length).toBe(2); // both replicas did some of the work
    } finally {
      for (const t of engines) await t.stop();
      for (const store of stores) await store.close();
      await database.drop();
    }
  }, 60_000);
});

describeEachStore('catching up after downtime', ({ store }) => {
  it('revokes everything that expired while no scheduler ran, at once on start', async () => {
    const first = await startEngine(store());
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { request } = await first.engine.submit({
        principal: { ...alice, id: `down-${i}` },
        target: 'prod-db',
        entitlement: 'readonly',
        durationMs: 60_000,
        reason: 'downtime',
      });
      ids.push(request.grantId!);
    }
    await waitFor(
      () => store().db.selectFrom('grants').select('status').where('id', 'in', ids).execute(),
      (rows) => rows.every((r) => r.status === 'active'),
    );
    await first.stop();
    // An hour passes while nobody runs: move the expiries (and their timers) into the past.
    await sql`UPDATE grants SET expires_at = now() - interval '1 hour' WHERE id = ANY(${ids})`.execute(store().db);
    await sql`UPDATE jobs SET due_at = now() - interval '1 hour' WHERE subject_id = ANY(${ids})`.execute(store().db);
    const overdue = await store().db.selectFrom('grants').select('status').where('id', 'in', ids).execute();
    expect(overdue.every((r) => r.status === 'active')).toBe(true);

    const second = await startEngine(store(), { noop: first.noop });
    const started = Date.now();
    try {
      await waitFor(
        () => store().db.selectFrom('grants').select('status').where('id', 'in', ids).execute(),
        (rows) => rows.every((r) => r.status === 'revoked'),
        5_000,
      );
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await second.stop();
    }
  });
});
