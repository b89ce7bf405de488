/**
 * A Lapse process for the kill -9 tests. `submit` asks for short auto-approved grants and keeps
 * running the scheduler; `resume` only runs the scheduler. Both exit 0 once every grant has ended.
 * The parent arms LAPSE_FAILPOINTS so the process kills itself at one step of provision or revoke.
 *
 * argv: <mode> <config.yaml> <dataDir or postgres URL> <count>
 */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/index.js';
import { connectorRegistry, NoopConnector } from '../../src/connectors/index.js';
import { Engine } from '../../src/engine/index.js';
import { openStore } from '../../src/store/index.js';

const [mode, configPath, where, countText] = process.argv.slice(2) as [string, string, string, string];
const store = await openStore(where.startsWith('postgres') ? { databaseUrl: where } : { dataDir: where });
const engine = new Engine({
  store,
  config: parseConfig(readFileSync(configPath, 'utf8'), configPath, {}),
  connectors: connectorRegistry([new NoopConnector()]),
});
await engine.start();

if (mode === 'submit') {
  for (let i = 0; i < Number(countText); i++) {
    await engine.submit({
      principal: { id: `user-${i}`, kind: 'user', groups: ['sre'] },
      target: 'crashy',
      entitlement: 'readonly',
      durationMs: 1_000,
      reason: 'crash test',
    });
  }
}

const deadline = Date.now() + 60_000;
for (;;) {
  const open = await store.db.selectFrom('grants').select('id').where('status', 'not in', ['revoked', 'failed']).execute();
  if (open.length === 0) break;
  if (Date.now() > deadline) {
    process.stderr.write(`grants still open: ${open.map((g) => g.id).join(', ')}\n`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await engine.stop();
await store.close();
