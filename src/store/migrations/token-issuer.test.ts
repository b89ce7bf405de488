import { Migrator, sql } from 'kysely';
import { expect, it } from 'vitest';
import { describeEachStore } from '../../../test/support/stores.js';
import { migrationProvider } from './index.js';

describeEachStore('migration 0010: who issued each existing API token', ({ store }) => {
  it('takes the issuer from the token.created audit event, or else the owner', async () => {
    const db = store().db;
    const migrator = new Migrator({ db, provider: migrationProvider });
    expect((await migrator.migrateTo('0009_statistics')).error).toBeUndefined();
    await sql`INSERT INTO users (id, name, kind, groups, created_at) VALUES ('usr_a', 'bob', 'user', '[]', now()), ('usr_b', 'ci-bot', 'service', '[]', now())`.execute(
      db,
    );
    for (const [id, user] of [
      ['tok_minted', 'usr_a'],
      ['tok_own', 'usr_a'],
      ['tok_bot', 'usr_b'],
    ]) {
      await sql`INSERT INTO api_tokens (id, user_id, name, secret_hash, scopes, created_at) VALUES (${id}, ${user}, 'x', ${`hash-${id}`}, '["read"]', now())`.execute(
        db,
      );
    }
    const event = (actor: string, subject: string) => JSON.stringify({ action: 'token.created', actor, subject, data: {} });
    await sql`INSERT INTO audit_events (seq, id, payload, prev_hash, hash) VALUES
      (900001, 'evt_m1', ${event('boss', 'tok_minted')}, 'x', 'y'),
      (900002, 'evt_m2', ${event('cli:root', 'tok_bot')}, 'x', 'y')`.execute(db);
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const { rows } = await sql<{ id: string; issued_by: string }>`SELECT id, issued_by FROM api_tokens WHERE id LIKE 'tok_%' ORDER BY id`.execute(db);
    expect(rows).toEqual([
      { id: 'tok_bot', issued_by: 'cli:root' },
      { id: 'tok_minted', issued_by: 'boss' },
      { id: 'tok_own', issued_by: 'bob' },
    ]);
    await sql`DELETE FROM audit_events WHERE seq > 900000`.execute(db);
  });
});
