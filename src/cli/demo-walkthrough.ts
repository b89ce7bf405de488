import type { Engine, StoredGrant } from '../engine/index.js';
import type { RuntimeLocation } from './context.js';
import { openRuntime } from './runtime.js';

const alice = { id: 'alice', kind: 'user' as const, groups: ['sre', 'oncall'] };
const bob = { id: 'bob', kind: 'user' as const, groups: ['sre-leads'] };
const carol = { id: 'carol', kind: 'user' as const, groups: ['security'] };

/**
 * The walk `lapse demo` prints: the example config through a whole access lifecycle on the real
 * engine and database: auto-approval, expiry on time, two-stage approval, early release, and the
 * audit chain verified at the end. The example's targets use the noop connector.
 */
export async function runDemo(location: RuntimeLocation): Promise<number> {
  const runtime = await openRuntime(location, undefined, { server: true });
  const { engine } = runtime;
  try {
    await engine.start();
    say(`Lapse demo: config ${location.configPath} (version ${engine.config.version.slice(0, 12)}), ${runtime.databaseKind} database in ${location.dataDir}`);
    await autoApproved(engine);
    await approvalFlow(engine);
    await runtime.checkpointer.stop(); // writes a final checkpoint
    const result = await engine.read.verifyAudit(runtime.checkpointKeys);
    say(
      `\n3. audit chain: ${result.ok ? 'OK' : 'BROKEN'}: ${result.events} events and ${result.checkpoints} signed checkpoint(s) verified (\`lapse audit verify\` does the same)`,
    );
    say(
      `\nThe demo's database and keys are in ${location.dataDir}, apart from what \`lapse serve\` uses (./.lapse, LAPSE_DATA_DIR or DATABASE_URL); delete it to start the demo afresh.`,
    );
    return result.ok ? 0 : 1;
  } finally {
    await runtime.close();
  }
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function until(engine: Engine, grantId: string, status: StoredGrant['status']): Promise<StoredGrant> {
  for (;;) {
    const grant = await engine.read.grant(grantId);
    if (grant?.status === status) return grant;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function autoApproved(engine: Engine): Promise<void> {
  say('\n1. alice asks for prod-db/readonly for 3 seconds; the policy auto-approves it.');
  const started = Date.now();
  const { request } = await engine.submit({
    principal: alice,
    target: 'prod-db',
    entitlement: 'readonly',
    durationMs: 3_000,
    reason: 'checking replication lag for INC-1042',
  });
  say(`   ${request.id}: ${request.status} (${request.reasons.join('; ')})`);
  const active = await until(engine, request.grantId!, 'active');
  say(`   ${active.id}: active after ${Date.now() - started} ms, expires at ${active.expiresAt!.toISOString()}`);
  const check = await engine.checkAccess('alice', 'prod-db', 'readonly');
  say(`   access check now: ${check.allowed ? 'allowed' : 'denied'}`);
  const revoked = await until(engine, active.id, 'revoked');
  say(`   ${revoked.id}: revoked at ${revoked.endedAt!.toISOString()} (${revoked.endedAt!.getTime() - active.expiresAt!.getTime()} ms after expiry)`);
}

async function approvalFlow(engine: Engine): Promise<void> {
  say('\n2. alice (not on call today) asks for prod-db/admin; it needs sre-leads, then security.');
  const offDuty = { ...alice, groups: ['sre'] };
  const { request } = await engine.submit({
    principal: offDuty,
    target: 'prod-db',
    entitlement: 'admin',
    durationMs: 60_000,
    reason: 'rotate the replication slot after failover',
    ticket: 'OPS-1234',
  });
  say(`   ${request.id}: ${request.status}, stages: ${request.stages.map((s) => s.name).join(' -> ')}`);
  try {
    await engine.review({ requestId: request.id, reviewer: offDuty, decision: 'approve' });
  } catch (error) {
    say(`   alice approving her own request: refused (${(error as Error).message})`);
  }
  const first = await engine.review({ requestId: request.id, reviewer: bob, decision: 'approve', comment: 'go ahead' });
  say(`   bob approves: ${first.effect}`);
  const second = await engine.review({ requestId: request.id, reviewer: carol, decision: 'approve', comment: 'ok' });
  say(`   carol approves: ${second.effect}`);
  const grantId = (await engine.read.request(request.id))!.grantId!;
  await until(engine, grantId, 'active');
  say(`   ${grantId}: active`);
  await engine.release({ grantId, by: offDuty, reason: 'done early' });
  const released = await until(engine, grantId, 'revoked');
  say(`   alice releases early: ${released.status} (${released.endReason})`);
}
