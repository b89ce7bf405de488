/**
 * A Lapse API server for the Idempotency-Key kill -9 tests: the engine and the HTTP API on
 * 127.0.0.1, with user alice (groups sre) and a fresh API token, printed as one JSON line
 * `{ "url": ..., "token": ... }` once it listens. The parent arms LAPSE_FAILPOINTS so the process
 * kills itself at one step of an idempotent request; it runs until killed or sent SIGTERM.
 *
 * argv: <config.yaml> <dataDir or postgres URL>
 */
import { readFileSync } from 'node:fs';
import { buildApiServer } from '../../src/api/index.js';
import { createUser, findUserByName, issueApiToken } from '../../src/auth/index.js';
import { parseConfig } from '../../src/config/index.js';
import { connectorRegistry, NoopConnector } from '../../src/connectors/index.js';
import { Engine } from '../../src/engine/index.js';
import { openStore } from '../../src/store/index.js';
import { authFor } from './auth-service.js';

const [configPath, where] = process.argv.slice(2) as [string, string];
const store = await openStore(where.startsWith('postgres') ? { databaseUrl: where } : { dataDir: where });
const engine = new Engine({
  store,
  config: parseConfig(readFileSync(configPath, 'utf8'), configPath, {}),
  connectors: connectorRegistry([new NoopConnector()]),
});
await engine.start();
const app = await buildApiServer({ engine, auth: authFor(engine), version: 'test' });
const url = await app.listen({ host: '127.0.0.1', port: 0 });
const now = new Date();
const alice = (await findUserByName(store.db, 'alice')) ?? (await createUser(store.db, { name: 'alice', groups: ['sre'] }, now));
const { token } = await issueApiToken(store.db, { userId: alice.id, name: 'crash-test', scopes: ['read', 'request'], expiresInMs: 3_600_000 }, now);
process.stdout.write(`${JSON.stringify({ url, token })}\n`);

process.once('SIGTERM', () => {
  void (async () => {
    await app.close();
    await engine.stop();
    await store.close();
    process.exit(0);
  })();
});
