/**
 * A Lapse process for the notification kill -9 test. `submit` creates people with addresses and
 * asks for auto-approved grants (each activation notifies its holder); `resume` only runs the
 * workers. Both exit 0 once no delivery is pending. The parent arms LAPSE_FAILPOINTS
 * (notify:after-commit, notify:after-send) so the process kills itself at that step.
 *
 * argv: <mode> <config.yaml> <dataDir or postgres URL> <count>
 */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/index.js';
import { connectorRegistry, NoopConnector } from '../../src/connectors/index.js';
import { newId } from '../../src/domain/ids.js';
import { Engine } from '../../src/engine/index.js';
import { insertUser, openStore, setUserEmail } from '../../src/store/index.js';

const [mode, configPath, where, countText] = process.argv.slice(2) as [string, string, string, string];
const count = Number(countText);
const store = await openStore(where.startsWith('postgres') ? { databaseUrl: where } : { dataDir: where });
if (mode === 'submit') {
  for (let i = 0; i < count; i++) {
    const name = `user-${i}`;
    await insertUser(store.db, { id: newId('user'), name, kind: 'user', groups: '["sre"]', password_hash: null, created_at: new Date(), disabled_at: null });
    await setUserEmail(store.db, name, `${name}@example.test`);
  }
}
const engine = new Engine({
  store,
  config: parseConfig(readFileSync(configPath, 'utf8'), configPath, process.env),
  connectors: connectorRegistry([new NoopConnector()]),
});
await engine.start();

if (mode === 'submit') {
  for (let i = 0; i < count; i++) {
    await engine.submit({
      principal: { id: `user-${i}`, kind: 'user', groups: ['sre'] },
      target: 'crashy',
      entitlement: 'readonly',
      durationMs: 3_600_000,
      reason: 'crash test',
    });
  }
}

const deadline = Date.now() + 60_000;
for (;;) {
  const all = await store.db.selectFrom('notification_deliveries').select(['id', 'status']).execute();
  const grants = await store.db.selectFrom('grants').select('status').execute();
  if (grants.every((g) => g.status === 'active') && all.length > 0 && all.every((d) => d.status !== 'pending')) break;
  if (Date.now() > deadline) {
    process.stderr.write(`deliveries still pending: ${JSON.stringify(all)}\n`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await engine.stop();
await store.close();
