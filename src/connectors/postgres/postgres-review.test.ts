import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { Engine, reportCsv } from '../../engine/index.js';
import { listReviewCampaigns, listReviewItems } from '../../store/index.js';
import { offline } from '../../../test/support/environment.js';
import { waitFor } from '../../../test/support/engine.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { PostgresConnector } from './postgres-connector.js';
import { openPostgresScratch, type PostgresScratch } from './testing/scratch-server.js';

/**
 * An access review end to end on the real PostgreSQL: a DBA grants a role behind Lapse's back,
 * reconciliation finds it (without remediating), the campaign opens on schedule, the owner decides
 * "remove" and the membership is gone from the server; the campaign closes and its report lists
 * every decision.
 */
describe.skipIf(offline())('access review on the postgres target', () => {
  let scratch: PostgresScratch;
  let opened: OpenedStore;
  let engine: Engine;
  const connector = new PostgresConnector();
  const carol = { id: 'carol', kind: 'user' as const, groups: ['dba-leads'] };

  const yaml = (reviews: string) => `
version: 1
targets:
  app-db:
    connector: postgres
    settings: { host: "${scratch.host}", port: ${scratch.port}, database: ${scratch.database}, user: ${scratch.lapseUser} }
    entitlements:
      reader-role: { settings: { mode: elevate, roles: [${scratch.reader}] } }
policies:
  - name: sre
    subjects: { users: [alice] }
    entitlements: ["app-db/reader-role"]
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
${reviews}`;
  const REVIEWS = `
reviews:
  - name: app-db-quarterly
    scope: { targets: [app-db] }
    every: 90d
    deadline: 14d
    reviewers: { owners: { "app-db/*": { users: [carol] } } }
    whenUnanswered: keep
`;

  beforeAll(async () => {
    scratch = await openPostgresScratch();
    opened = await openTestStore('pglite');
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await connector.close();
    await scratch?.close();
  });

  it('removes standing access at the target on "remove", and the closed campaign reports every decision', async () => {
    const outsider = `lapsetest_reviewed_${scratch.suffix}`;
    await scratch.createRole(outsider, 'LOGIN');
    await scratch.dba.query(`GRANT ${scratch.dba.escapeIdentifier(scratch.reader)} TO ${scratch.dba.escapeIdentifier(outsider)}`);
    const before = new Engine({ store: opened.store, config: parseConfig(yaml(''), 'review.yaml', {}), connectors: connectorRegistry([connector]) });
    await before.start();
    const [run] = await before.reconcile('app-db', { actor: 'test' });
    expect(run!.findings).toContainEqual(expect.objectContaining({ kind: 'standing', status: 'open', account: outsider }));
    await before.stop();

    engine = new Engine({ store: opened.store, config: parseConfig(yaml(REVIEWS), 'review.yaml', {}), connectors: connectorRegistry([connector]) });
    await engine.start();
    const [campaign] = await waitFor(
      () => listReviewCampaigns(opened.store.db),
      (c) => c.length === 1,
    );
    const queue = await engine.reviewQueue(carol);
    const standing = queue.find((i) => i.kind === 'standing' && i.evidence.account === outsider)!;
    expect(standing).toBeDefined();
    const { items } = await engine.decideReviewItems({ itemIds: [standing.id], decision: 'remove', justification: 'nobody knows this account', by: carol });
    expect(items[0]).toMatchObject({ outcome: 'removed' });
    const members = await scratch.dba.query('SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1', [outsider]);
    expect(members.rowCount).toBe(0);

    const closed = await engine.closeReviewCampaign({ campaignId: campaign!.id, by: 'root' });
    expect(closed.campaign.status).toBe('closed');
    const all = await listReviewItems(opened.store.db, { campaignId: campaign!.id });
    expect(all.every((i) => i.decision !== null)).toBe(true);
    const report = await engine.complianceReport({
      kind: 'access-reviews',
      from: new Date(Date.now() - 3_600_000),
      to: new Date(Date.now() + 3_600_000),
      by: 'test',
      publicKeys: [],
    });
    expect(report.rows).toHaveLength(all.length);
    const csv = reportCsv(report);
    expect(csv).toContain(`app-db/reader-role`);
    expect(csv).toContain('nobody knows this account');
    expect(report.rows.find((r) => r.item === standing.id)).toMatchObject({ decision: 'remove', outcome: 'removed', decidedBy: 'carol' });
    expect(report.rows.find((r) => r.person === 'alice')).toMatchObject({ decision: 'keep', byDefault: true, decidedBy: 'system' });
  }, 120_000);
});
