import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../test/support/stores.js';
import { adminSocketPath, openViaAdminSocket } from './admin-socket.js';
import type { Store } from './database.js';

describe('the admin socket: a running server lends its embedded session', () => {
  let server: Store;
  let stop: () => Promise<void>;
  const dir = mkdtempSync(join(tmpdir(), 'lapse-admin-socket-'));
  const logged: string[] = [];

  beforeAll(async () => {
    server = await openPgliteStore();
    stop = await server.serveAdminSocket!(dir, { log: (m) => logged.push(m), idleMs: 500 });
    await sql`CREATE TABLE wire (id int PRIMARY KEY, at timestamptz, bytes bytea, big bigint, doc jsonb)`.execute(server.db);
  });
  afterAll(async () => {
    await stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is reachable by its owner only: directory 0700, socket 0600', () => {
    expect(statSync(join(dir, 'admin')).mode & 0o777).toBe(0o700);
    expect(statSync(adminSocketPath(dir)).mode & 0o777).toBe(0o600);
  });

  it('runs queries and transactions on the server, keeping dates, bytes, big integers and JSON', async () => {
    const remote = await openViaAdminSocket(dir);
    try {
      const at = new Date('2026-12-07T12:00:00.123Z');
      const bytes = Buffer.from([0, 1, 2, 254, 255]);
      await remote.db.transaction().execute(async (tx) => {
        await sql`INSERT INTO wire VALUES (1, ${at}, ${bytes}, ${'9007199254740993'}, ${JSON.stringify({ $date: 'not a date', n: 1 })})`.execute(tx);
      });
      const { rows } = await sql<{ at: Date; bytes: Buffer; big: string; doc: unknown }>`SELECT at, bytes, big, doc FROM wire WHERE id = 1`.execute(remote.db);
      expect(rows[0]!.at).toEqual(at);
      expect(Buffer.compare(rows[0]!.bytes, bytes)).toBe(0);
      expect(String(rows[0]!.big)).toBe('9007199254740993');
      expect(rows[0]!.doc).toEqual({ $date: 'not a date', n: 1 });
      // The server sees what the command committed.
      expect((await sql<{ n: number }>`SELECT count(*)::int AS n FROM wire`.execute(server.db)).rows[0]!.n).toBe(1);
    } finally {
      await remote.close();
    }
  });

  it('reports database errors with their SQLSTATE and rolls the transaction back', async () => {
    const remote = await openViaAdminSocket(dir);
    try {
      await expect(
        remote.db.transaction().execute(async (tx) => {
          await sql`INSERT INTO wire (id) VALUES (2)`.execute(tx);
          await sql`INSERT INTO wire (id) VALUES (1)`.execute(tx);
        }),
      ).rejects.toMatchObject({ code: '23505' });
      expect((await sql<{ n: number }>`SELECT count(*)::int AS n FROM wire WHERE id = 2`.execute(server.db)).rows[0]!.n).toBe(0);
    } finally {
      await remote.close();
    }
  });

  it('rolls back what a command left open when it dies, and the server goes on', async () => {
    const socket = createConnection(adminSocketPath(dir));
    await new Promise((resolve) => socket.once('connect', resolve));
    const send = (text: string) => socket.write(`${JSON.stringify({ sql: text, parameters: [] })}\n`);
    send('BEGIN');
    send('INSERT INTO wire (id) VALUES (3)');
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy(); // killed mid-transaction
    await expect
      .poll(async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM wire WHERE id = 3`.execute(server.db)).rows[0]!.n, { timeout: 10_000 })
      .toBe(0);
    await sql`INSERT INTO wire (id) VALUES (4)`.execute(server.db);
  });

  it('ends a session idle inside a transaction, so the server is not held up', async () => {
    const socket = createConnection(adminSocketPath(dir));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.resume(); // read the replies, so the end is seen
    socket.write(`${JSON.stringify({ sql: 'BEGIN', parameters: [] })}\n`);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await closed; // after the 500 ms idle limit
    expect(logged.some((m) => /idle for 0.5 s/.test(m))).toBe(true);
    // The server's own work runs again at once.
    await sql`SELECT 1`.execute(server.db);
  });

  it('refuses clearly when no server answers', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'lapse-admin-socket-none-'));
    try {
      await expect(openViaAdminSocket(empty)).rejects.toMatchObject({ code: 'storage_locked', message: expect.stringMatching(/does not answer/) });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
