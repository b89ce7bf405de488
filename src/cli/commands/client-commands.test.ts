import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CONFIG, waitFor } from '../../../test/support/engine.js';
import { cliHome, runLapse, startLapseServer, type CliRun, type LapseServer } from '../../../test/support/lapse-server.js';
import { totpCodeAt } from '../../auth/mfa/index.js';

/**
 * The client commands end to end: a real Lapse server (PGlite, TEST_CONFIG) on 127.0.0.1 and the
 * real `lapse` process, checked by exit code, text and --json.
 */

const json = <T = Record<string, unknown>>(run: CliRun): T => {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
};
const errorOf = (run: CliRun) => (JSON.parse(run.stderr.trim().split('\n').at(-1)!) as { error: { code: string; message: string; hint?: string } }).error;

interface Req {
  id: string;
  status: string;
  grantId: string | null;
  kind: string;
}
interface Grant {
  id: string;
  status: string;
  expiresAt: string | null;
  credentialsWaiting: boolean;
}

/** Each `lapse` run starts a Node process (seconds on a busy 2-core machine); tests run several. */
const CLI_TEST_TIMEOUT_MS = 300_000;

const home = cliHome();
let server: LapseServer;
const tokens: Record<string, string> = {};

/** `lapse <args>` as `user` (LAPSE_SERVER + LAPSE_TOKEN, an empty config dir). */
const as = (user: string, ...args: string[]) => runLapse(args, { LAPSE_SERVER: server.url, LAPSE_TOKEN: tokens[user], LAPSE_CONFIG_DIR: home.dir });
/** Runs `work` over `items`, four at a time (each is a Node process). */
async function fourAtATime<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}
const requestCount = async () => Number((await sql<{ n: string }>`SELECT count(*) AS n FROM requests`.execute(server.store.db)).rows[0]!.n);

beforeAll(async () => {
  server = await startLapseServer();
  for (const user of ['alice', 'bob', 'carol', 'mallory']) tokens[user] = await server.token(user);
  tokens.root = await server.token('root', ['admin']);
  tokens.auditor = await server.token('auditor', ['read']);
  tokens.aliceReadOnly = await server.token('alice', ['read']);
});
afterAll(async () => {
  await server?.close();
  home.remove();
});

describe('lapse request (auto-approved) --wait', { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  let grantId = '';

  it('reaches active and prints the credentials once, as JSON', async () => {
    const run = await as(
      'alice',
      '--json',
      'request',
      'prod-db/ephemeral',
      '--for',
      '1h',
      '--reason',
      'INC-42 checking replication lag',
      '--wait',
      '--timeout',
      '2m',
    );
    expect(run.code, run.stderr).toBe(0);
    const out = json<{ outcome: string; request: Req; grant: Grant; credentials: Record<string, string> }>(run);
    expect(out.outcome).toBe('active');
    expect(out.request).toMatchObject({ status: 'approved', kind: 'access' });
    expect(out.grant).toMatchObject({ id: out.request.grantId, status: 'active' });
    expect(out.credentials).toMatchObject({ username: `noop_${out.grant.id}`, password: expect.any(String) });
    expect(run.stderr).not.toContain(out.credentials.password);
    grantId = out.grant.id;
  });

  it('refuses a second fetch of the same credentials (gone, exit 3)', async () => {
    const run = await as('alice', 'credentials', grantId);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/already fetched \(they are handed out once\)/);
    expect(run.stdout).toBe('');
  });

  it('prints them in text with a header saying they are shown once, and progress on stderr', async () => {
    const run = await as('alice', 'request', 'prod-db/ephemeral', '--reason', 'INC-43 one more look', '--wait');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/grt_[0-9a-z]{26} {2}prod-db\/ephemeral {2}active/);
    expect(run.stdout).toMatch(/expires .* \(in (59m|1h)/);
    expect(run.stdout).toMatch(/Credentials for grt_[0-9a-z]{26} \(shown this once; lapse keeps no copy\):\n {2}username {2}noop_grt_/);
    expect(run.stderr).toMatch(/approved by policy sre-readonly/);
  });

  it('without --wait says what was decided and how to follow it', async () => {
    const run = await as('alice', 'request', 'prod-db/readonly', '--for', '30m', '--reason', 'quick look');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /^req_[0-9a-z]{26}: prod-db\/readonly approved by policy sre-readonly; grant grt_[0-9a-z]{26} is being set up\nFollow it with `lapse status grt_/,
    );
  });

  it('status of the grant shows expiry with the time left, and the timeline of its request', async () => {
    const run = await as('alice', 'status', grantId);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^grant grt_\S+ {2}prod-db\/ephemeral {2}active\n {2}expires \S+ \(in (59m|1h)/);
    expect(run.stdout).toMatch(/timeline:\n/);
    const asJson = json<{ grant: Grant; request: Req; timeline: unknown[] }>(await as('alice', '--json', 'status', grantId));
    expect(asJson.grant).toMatchObject({ id: grantId, status: 'active', credentialsWaiting: false });
    expect(asJson.timeline.length).toBeGreaterThan(0);
  });

  it('extends, then releases, the grant', async () => {
    const extended = await as('alice', '--json', 'extend', grantId, '--for', '30m', '--reason', 'INC-42 needs another half hour');
    expect(extended.code, extended.stderr).toBe(0);
    expect(json<{ request: Req }>(extended).request).toMatchObject({ kind: 'extension', status: 'approved' });
    const released = await as('alice', '--json', 'release', grantId, '--reason', 'done');
    expect(released.code, released.stderr).toBe(0);
    expect(['revoking', 'revoked']).toContain(json<{ grant: Grant }>(released).grant.status);
  });
});

describe('requests that need approval', { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  const ask = (...extra: string[]) =>
    as('alice', '--json', 'request', 'prod-db/admin', '--for', '1h', '--reason', 'INC-7 rotating the replica', '--ticket', 'OPS-7', ...extra);

  it('stays pending and says who must approve; a self-approval is refused (exit 6); others approve it stage by stage', async () => {
    const submitted = await ask();
    expect(submitted.code, submitted.stderr).toBe(0);
    const { request } = json<{ request: Req }>(submitted);
    expect(request.status).toBe('pending');

    const text = await as('alice', 'status', request.id);
    expect(text.stdout).toMatch(/waiting for an approval from group sre-leads \(stage leads 1\/2\)/);

    const self = await as('alice', '--json', 'approve', request.id);
    expect(self.code).toBe(6);
    expect(errorOf(self).code).toBe('self_approval');

    const inbox = await as('bob', '--json', 'ls', '--to-approve');
    expect(inbox.code, inbox.stderr).toBe(0);
    expect(json<{ requests: Req[] }>(inbox).requests.map((r) => r.id)).toContain(request.id);
    expect((await as('bob', 'ls', '--to-approve')).stdout).toMatch(new RegExp(`waiting for your review:\\n {2}${request.id} {2}alice`));

    const wrongStage = await as('carol', '--json', 'approve', request.id);
    expect(wrongStage.code).toBe(6);

    const first = await as('bob', 'approve', request.id, '--comment', 'looks right');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^approval recorded: req_\S+ .*pending\n {2}waiting for an approval from group security \(stage security 2\/2\)/);
    const second = await as('carol', '--json', 'approve', request.id);
    expect(second.code, second.stderr).toBe(0);
    expect(json<{ request: Req }>(second).request).toMatchObject({ status: 'approved', grantId: expect.stringMatching(/^grt_/) });
    const again = await as('bob', '--json', 'approve', request.id);
    expect(again.code).toBe(4);
    expect(errorOf(again).code).toBe('invalid_transition');

    const detail = json<{ reviews: { reviewerId: string; decision: string; comment: string }[] }>(await as('alice', '--json', 'status', request.id));
    expect(detail.reviews).toEqual([
      expect.objectContaining({ reviewerId: 'bob', decision: 'approve', comment: 'looks right' }),
      expect.objectContaining({ reviewerId: 'carol', decision: 'approve' }),
    ]);
  });

  it('--wait follows the approvals live until the access is active', async () => {
    const before = new Set((await server.store.db.selectFrom('requests').select('id').execute()).map((r) => r.id));
    const waiting = ask('--wait', '--timeout', '3m');
    const pending = await waitFor(
      () => server.store.db.selectFrom('requests').select(['id', 'status']).where('entitlement', '=', 'admin').execute(),
      (rows) => rows.some((r) => !before.has(r.id)),
      60_000,
    );
    const id = pending.find((r) => !before.has(r.id))!.id;
    expect((await as('bob', 'approve', id)).code).toBe(0);
    expect((await as('carol', 'approve', id)).code).toBe(0);
    const run = await waiting;
    expect(run.code, run.stderr).toBe(0);
    const out = json<{ outcome: string; request: Req; grant: Grant; credentials: unknown }>(run);
    expect(out).toMatchObject({ outcome: 'active', request: { id, status: 'approved' }, grant: { status: 'active' }, credentials: null });
  });

  it('deny: the requester sees it denied, and --wait ends with exit 1', async () => {
    const waiting = ask('--wait');
    const id = await waitFor(
      () => server.store.db.selectFrom('requests').select(['id']).where('entitlement', '=', 'admin').where('status', '=', 'pending').execute(),
      (rows) => rows.length > 0,
      60_000,
    ).then((rows) => rows[0]!.id);
    const denied = await as('bob', 'deny', id, '--comment', 'use the read replica');
    expect(denied.code, denied.stderr).toBe(0);
    expect(denied.stdout).toMatch(/^denied: req_\S+ .* denied/);
    const run = await waiting;
    expect(run.code).toBe(1);
    expect(json<{ outcome: string }>(run).outcome).toBe('denied');
  });
});

describe('lookups, listings and refusals', { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it('not found is exit 3, for ids that do not exist or that the caller may not see', async () => {
    const { request } = await server.engine.engine.submit({
      principal: { id: 'alice', kind: 'user', groups: ['sre'] },
      target: 'prod-db',
      entitlement: 'readonly',
      durationMs: 60_000,
      reason: 'mine alone',
    });
    const [missing, approveMissing, someoneElses, grantMissing] = await Promise.all([
      as('alice', 'status', 'req_01jaaaaaaaaaaaaaaaaaaaaaaa'),
      as('bob', 'approve', 'req_01jaaaaaaaaaaaaaaaaaaaaaaa'),
      as('mallory', 'status', request.id),
      as('alice', 'release', 'grt_01jaaaaaaaaaaaaaaaaaaaaaaa'),
    ]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/there is no request req_01jaaaaaaaaaaaaaaaaaaaaaaa/);
    expect(approveMissing.code).toBe(3);
    expect(someoneElses.code).toBe(3);
    expect(grantMissing.code).toBe(3);

    const { request: pending } = await server.engine.engine.submit({
      principal: { id: 'alice', kind: 'user', groups: ['sre'] },
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 60_000,
      reason: 'changed my mind',
      ticket: 'OPS-2',
    });
    const [notMine, cancelled] = [await as('bob', 'cancel', pending.id), await as('alice', '--json', 'cancel', pending.id)];
    expect(notMine.code).toBe(3);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(json<{ request: Req }>(cancelled).request.status).toBe('cancelled');
  });

  it('bad flags are usage errors (exit 2) and nothing is sent', async () => {
    const keyFile = join(home.dir, 'id_ed25519');
    writeFileSync(keyFile, '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    const before = await requestCount();
    // A few through the real process (each flag check has its unit test in client-flags.test.ts).
    const cases: [string[], RegExp][] = [
      [['request', 'prod-db', '--reason', 'x'], /is not <target>\/<entitlement>/],
      [['request', 'prod-db/readonly', '--for', '10x', '--reason', 'x'], /"10x" is not a duration.*--for/],
      [['request', 'prod-db/readonly'], /--reason is required/],
      [['request', 'bastion/login', '--reason', 'x', '--ssh-key', keyFile], /is a PRIVATE key; it was not sent/],
      [['break-glass', 'prod-db/readonly', '--for', '30m', '--reason', 'database down, paging did not help'], /not a terminal.*--yes/s],
      [['ls', '--limit', '0'], /--limit must be a whole number from 1 to 200/],
      [['status', 'foo'], /is not a request or grant id/],
      [['extend', 'grt_01jaaaaaaaaaaaaaaaaaaaaaaa', '--reason', 'x'], /required option '--for/],
      [['request', 'prod-db/readonly', '--reason', 'x', '--frobnicate'], /unknown option/],
    ];
    // Pointed at a closed port: any call that slipped out would fail with exit 5, not 2.
    const runs = await fourAtATime(cases, ([args]) =>
      runLapse([...args, '--server', 'http://127.0.0.1:1'], { LAPSE_TOKEN: tokens.alice, LAPSE_CONFIG_DIR: home.dir }),
    );
    runs.forEach((run, i) => {
      expect(run.code, `${cases[i]![0].join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr, cases[i]![0].join(' ')).toMatch(cases[i]![1]);
    });
    expect(await requestCount()).toBe(before);
  });

  it('unauthenticated is exit 6: no sign-in at all, or a token the server does not know', async () => {
    const none = await runLapse(['ls'], { LAPSE_CONFIG_DIR: home.dir, XDG_CONFIG_HOME: home.dir });
    expect(none.code).toBe(6);
    expect(none.stderr).toMatch(/you are not signed in.*lapse login/);
    const bad = await runLapse(['--json', 'ls'], { LAPSE_SERVER: server.url, LAPSE_TOKEN: `lapse_${'Z'.repeat(43)}`, LAPSE_CONFIG_DIR: home.dir });
    expect(bad.code).toBe(6);
    expect(errorOf(bad).code).toBe('unauthenticated');
    expect(bad.stderr).not.toContain('Z'.repeat(43));
  });

  it('wrong scope or role is exit 6: a read-only token cannot request, a requester cannot revoke or list everyone', async () => {
    const readOnly = await runLapse(['request', 'prod-db/readonly', '--reason', 'x'], {
      LAPSE_SERVER: server.url,
      LAPSE_TOKEN: tokens.aliceReadOnly,
      LAPSE_CONFIG_DIR: home.dir,
    });
    expect(readOnly.code).toBe(6);
    expect(readOnly.stderr).toMatch(/lacks the "request" scope/);
    expect((await as('alice', 'ls', '--all')).code).toBe(6);
    const { request } = json<{ request: Req }>(await as('alice', '--json', 'request', 'prod-db/readonly', '--reason', 'to be revoked'));
    const grantId = request.grantId!;
    const notAdmin = await as('alice', 'revoke', grantId, '--reason', 'x');
    expect(notAdmin.code).toBe(6);
    const revoked = await as('root', '--json', 'revoke', grantId, '--reason', 'INC-9 containment');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(json<{ grant: Grant }>(revoked).grant.id).toBe(grantId);
  });

  it('ls lists my requests and active grants; --all for admins; --status narrows', async () => {
    for (const reason of ['one', 'two', 'three']) {
      await server.engine.engine.submit({
        principal: { id: 'alice', kind: 'user', groups: ['sre', 'oncall'] },
        target: 'prod-db',
        entitlement: 'readonly',
        durationMs: 60_000,
        reason,
      });
    }
    const mine = json<{ requests: Req[]; grants: Grant[] }>(await as('alice', '--json', 'ls'));
    expect(mine.requests.length).toBeGreaterThan(3);
    expect(mine.grants.every((g) => ['provisioning', 'active'].includes(g.status))).toBe(true);
    const pendingOnly = json<{ requests: Req[]; grants: null }>(await as('alice', '--json', 'ls', '--status', 'denied'));
    expect(pendingOnly.grants).toBeNull();
    expect(pendingOnly.requests.every((r) => r.status === 'denied')).toBe(true);
    const text = await as('alice', 'ls', '--limit', '2');
    expect(text.stdout).toMatch(/^requests:\n {2}req_\S+ {2}alice/);
    expect(text.stdout).toMatch(/… more \(raise --limit, or narrow with --status and page with --cursor\)/);
    const everyone = await as('root', '--json', 'ls', '--all');
    expect(everyone.code, everyone.stderr).toBe(0);

    // Paging one list: each page continues where the last ended, newest first, without repeats.
    const all = json<{ requests: Req[] }>(await as('alice', '--json', 'ls', '--status', 'approved', '--limit', '200')).requests.map((r) => r.id);
    const first = await as('alice', 'ls', '--status', 'approved', '--limit', '2');
    const cursor = /… more: repeat with --cursor (\S+)/.exec(first.stdout)?.[1];
    expect(cursor, first.stdout).toBeDefined();
    const second = json<{ requests: Req[]; nextCursor: { requests: string | null } }>(
      await as('alice', '--json', 'ls', '--status', 'approved', '--limit', '2', '--cursor', cursor!),
    );
    expect(second.requests.map((r) => r.id)).toEqual(all.slice(2, 4));
    const [both, bad] = await Promise.all([as('alice', 'ls', '--cursor', cursor!), as('alice', 'ls', '--status', 'approved', '--cursor', 'not a cursor!')]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--cursor pages one list/);
    expect(bad.code).toBe(2);
  });

  it('break-glass with --yes is granted at once and marked', async () => {
    const run = await as(
      'alice',
      '--json',
      'break-glass',
      'prod-db/readonly',
      '--for',
      '30m',
      '--reason',
      'primary is down and paging did not reach anyone',
      '--yes',
    );
    expect(run.code, run.stderr).toBe(0);
    expect(json<{ request: Req }>(run).request).toMatchObject({ kind: 'break_glass', status: 'approved' });
    const refused = await as('mallory', 'break-glass', 'prod-db/readonly', '--for', '30m', '--reason', 'I would like to look at production please', '--yes');
    expect(refused.code).not.toBe(0);

    // The after-the-fact review: listed for admins and auditors until someone else reviews it, once.
    const id = json<{ request: Req }>(run).request.id;
    const [listed, mine, own] = await Promise.all([
      as('auditor', '--json', 'ls', '--break-glass'),
      as('alice', 'ls', '--break-glass'),
      as('alice', 'review-break-glass', id),
    ]);
    expect(json<{ requests: Req[] }>(listed).requests.map((r) => r.id)).toContain(id);
    expect(mine.code).toBe(6);
    expect(own.code).toBe(6);
    const reviewed = await as('root', 'review-break-glass', id, '--comment', 'justified: INC-77');
    expect(reviewed.code, reviewed.stderr).toBe(0);
    expect(reviewed.stdout).toMatch(/^break-glass use reviewed: /);
    const [again, after] = await Promise.all([as('root', '--json', 'review-break-glass', id), as('auditor', '--json', 'ls', '--break-glass')]);
    expect(again.code).toBe(4);
    expect(errorOf(again).message).toMatch(/already reviewed by root/);
    expect(json<{ requests: Req[] }>(after).requests.map((r) => r.id)).not.toContain(id);
  });

  it('audit: admins and auditors query and export; others are refused', async () => {
    const query = await as('root', '--json', 'audit', '--action', 'request.*', '--since', '1h', '--limit', '2');
    expect(query.code, query.stderr).toBe(0);
    const page = json<{ items: { action: string }[]; nextCursor: string | null }>(query);
    expect(page.items).toHaveLength(2);
    expect(page.nextCursor).not.toBeNull();
    expect(page.items.every((e) => e.action.startsWith('request.'))).toBe(true);
    expect((await as('auditor', 'audit', '--actor', 'alice')).stdout).toMatch(/request\.\w+ +alice/);
    expect((await as('alice', 'audit')).code).toBe(6);
    const jsonl = await as('auditor', 'audit', '--export', 'jsonl', '--since', '1h');
    expect(jsonl.code, jsonl.stderr).toBe(0);
    const lines = jsonl.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect(JSON.parse(line)).toHaveProperty('action');
    const csv = await as('auditor', 'audit', '--export', 'csv');
    expect(csv.stdout.split('\r\n')[0]).toBe('seq,at,action,actor,subject,data');
  });
});

describe('step-up: a policy that wants a fresh second factor', { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  const yaml = TEST_CONFIG.replace('      ephemeral:', '      sensitive: { description: needs a fresh second factor }\n      ephemeral:').replace(
    'policies:\n',
    'policies:\n  - name: sensitive-mfa\n    subjects: { groups: [sre] }\n    entitlements: ["prod-db/sensitive"]\n    require: { mfa: { maxAge: 5m } }\n    autoApprove: true\n',
  );
  let mfaServer: LapseServer;
  let token = '';
  let secret = '';
  beforeAll(async () => {
    mfaServer = await startLapseServer({ yaml });
    token = await mfaServer.token('alice');
    const headers = { authorization: `Bearer ${token}` };
    const enrolled = await mfaServer.app.inject({ method: 'POST', url: '/api/v1/mfa/totp', headers });
    secret = (enrolled.json() as { secret: string }).secret;
    const confirmed = await mfaServer.app.inject({
      method: 'POST',
      url: '/api/v1/mfa/totp/confirm',
      headers,
      payload: { code: totpCodeAt(secret, new Date(Date.now() - 30_000)) },
    });
    expect(confirmed.statusCode).toBe(200);
  });
  afterAll(async () => {
    await mfaServer?.close();
  });
  const run = (...args: string[]) => runLapse(args, { LAPSE_SERVER: mfaServer.url, LAPSE_TOKEN: token, LAPSE_CONFIG_DIR: home.dir });

  it('without a terminal or --mfa-code: exit 6, saying how to give the code', async () => {
    const refused = await run('--json', 'request', 'prod-db/sensitive', '--reason', 'INC-5 reading secrets');
    expect(refused.code).toBe(6);
    const error = errorOf(refused);
    expect(error.code).toBe('mfa_step_up_required');
    expect(error.hint).toMatch(/--mfa-code/);
  });

  it('with --mfa-code: the same request is repeated with X-Lapse-MFA and goes through once', async () => {
    const before = await mfaServer.store.db.selectFrom('requests').select('id').execute();
    const granted = await run(
      '--json',
      'request',
      'prod-db/sensitive',
      '--reason',
      'INC-5 reading secrets',
      '--mfa-code',
      totpCodeAt(secret, new Date(Date.now() + 30_000)),
    );
    expect(granted.code, granted.stderr).toBe(0);
    expect(json<{ request: Req }>(granted).request.status).toBe('approved');
    const after = await mfaServer.store.db.selectFrom('requests').select('id').execute();
    expect(after.length - before.length).toBe(1);
    const wrong = await run('request', 'prod-db/sensitive', '--reason', 'INC-5 reading secrets', '--mfa-code', '000000');
    expect(wrong.code).toBe(6);
  });
});
