/**
 * The server side of the HTTP benchmark, run as its own process so the load generator does not
 * share its event loop: a Lapse API on the bench config, one user with a token. Prints
 * {"port":…,"token":"…"} on its first line and serves until SIGTERM.
 */
import { buildApiServer } from '../src/api/index.js';
import { createUser, issueApiToken } from '../src/auth/index.js';
import { openStore } from '../src/store/index.js';
import { benchEngine } from './lifecycle.js';
import { authFor } from '../test/support/auth-service.js';

const [flag, location] = process.argv.slice(2);
if ((flag !== '--data-dir' && flag !== '--database-url') || !location) throw new Error('usage: http-server.ts --data-dir DIR | --database-url URL');
const store = await openStore(flag === '--data-dir' ? { dataDir: location } : { databaseUrl: location });
const engine = benchEngine(store);
await engine.start();
const app = await buildApiServer({ engine, auth: authFor(engine), version: 'bench' });
await app.listen({ host: '127.0.0.1', port: 0 });
const user = await createUser(store.db, { name: 'bench-user', groups: ['bench'] }, new Date());
const { token } = await issueApiToken(store.db, { userId: user.id, name: 'bench', scopes: ['read', 'request'], expiresInMs: null }, new Date());
const address = app.server.address() as { port: number };
process.stdout.write(`${JSON.stringify({ port: address.port, token })}\n`);
process.once('SIGTERM', () => {
  void (async () => {
    await app.close();
    await engine.stop();
    await store.close();
    process.exit(0);
  })();
});
