/**
 * A Lapse process for the kill -9 tests. `submit` asks for short auto-approved grants and keeps
 * running the scheduler; `resume` only runs the scheduler. Both exit 0 once every grant has ended.
 * The parent arms LAPSE_FAILPOINTS so the process kills itself at one step of provision or revoke.
 * LAPSE_CRASH_GCP ({ tokenUrl, clientId, secret }) adds the gcp-iam connector, getting its tokens
 * from the parent's fake Cloud Resource Manager.
 *
 * argv: <mode> <config.yaml> <dataDir or postgres URL> <count>
 */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/index.js';
import { connectorRegistry, GcpIamConnector, NoopConnector, type Connector } from '../../src/connectors/index.js';
import { fakeTokenSource } from '../../src/connectors/gcp-iam/testing/fake-resource-manager.js';
import { Engine } from '../../src/engine/index.js';
import { openStore } from '../../src/store/index.js';

const [mode, configPath, where, countText] = process.argv.slice(2) as [string, string, string, string];
const connectors: Connector[] = [new NoopConnector()];
if (process.env.LAPSE_CRASH_GCP) {
  const { tokenUrl, clientId, secret } = JSON.parse(process.env.LAPSE_CRASH_GCP) as Record<string, string>;
  connectors.push(new GcpIamConnector({ tokenSource: fakeTokenSource(tokenUrl!, clientId!, secret!) }));
}
const store = await openStore(where.startsWith('postgres') ? { databaseUrl: where } : { dataDir: where });
const engine = new Engine({
  store,
  config: parseConfig(readFileSync(configPath, 'utf8'), configPath, {}),
  connectors: connectorRegistry(connectors),
});
await engine.start();

if (mode === 'submit') {
  for (let i = 0; i < Number(countText); i++) {
    await engine.submit({
      principal: { id: `user-${i}@example.com`, kind: 'user', groups: ['sre'] },
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
