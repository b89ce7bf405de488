import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliHome, runLapse, startLapseServer, type LapseServer } from '../../../test/support/lapse-server.js';
import { campaignSettings } from '../../config/reviews.js';

/** `lapse review ls|decide|close` and `lapse report` end to end: the real `lapse` process against a real server. */

const TIMEOUT = 300_000;
const home = cliHome();
let server: LapseServer;
const tokens: Record<string, string> = {};
const as = (user: string, ...args: string[]) => runLapse(args, { LAPSE_SERVER: server.url, LAPSE_TOKEN: tokens[user], LAPSE_CONFIG_DIR: home.dir });

beforeAll(async () => {
  server = await startLapseServer();
  for (const user of ['bob', 'carol', 'alice']) tokens[user] = await server.token(user);
  tokens.root = await server.token('root', ['admin']);
  tokens.auditor = await server.token('auditor', ['read']);
  await server.engine.engine.openReviewCampaign(
    campaignSettings({
      name: 'cli-review',
      description: '',
      scope: { targets: ['prod-db'], entitlements: [], policies: ['sre-readonly'], groups: [] },
      deadline: 7 * 86_400_000,
      reviewers: { owners: {}, fallback: { users: [], groups: ['sre-leads'] } },
      whenUnanswered: 'flag',
      highRisk: [],
    }),
    'root',
  );
}, TIMEOUT);
afterAll(async () => {
  await server?.close();
  home.remove();
});

it(
  'lists the queue, decides in bulk, refuses bad input and self-review, closes, and writes the report',
  async () => {
    const queue = await as('bob', 'review', 'ls', '--json');
    expect(queue.code).toBe(0);
    const items = (JSON.parse(queue.stdout) as { items: { id: string; principalId: string; entitlement: string }[] }).items;
    expect(items.map((i) => `${i.principalId} ${i.entitlement}`).sort()).toEqual(['alice ephemeral', 'alice readonly']);
    const [bad, none] = await Promise.all([as('bob', 'review', 'decide', 'rvi_!', '--keep'), as('bob', 'review', 'decide', items[0]!.id)]);
    expect(bad.code).toBe(2);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/exactly one of --keep, --remove or --unsure/);
    const stranger = await as('alice', 'review', 'decide', items[0]!.id, '--keep');
    expect(stranger.code).not.toBe(0);
    const decided = await as('bob', 'review', 'decide', ...items.map((i) => i.id), '--remove', '--justification', 'moved to another team');
    expect(decided.code).toBe(0);
    expect(decided.stdout).toContain('proposed change: take alice out of group(s) sre');
    const campaigns = await as('auditor', 'review', 'ls', '--campaigns');
    expect(campaigns.stdout).toMatch(/rvc_\S+ {2}cli-review {2}open {2}2\/2 decided/);
    const id = /(rvc_\S+)/.exec(campaigns.stdout)![1]!;
    expect((await as('auditor', 'review', 'close', id)).code).not.toBe(0);
    const closed = await as('root', 'review', 'close', id);
    expect(closed.code).toBe(0);
    expect(closed.stdout).toMatch(/closed cli-review: 0 unanswered item\(s\) got the default; outcomes change_proposed 2/);

    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const csv = await as('auditor', 'report', 'access-reviews', '--from', day(-1), '--to', day(1));
    expect(csv.code).toBe(0);
    expect(csv.stdout.split('\n')[0]).toMatch(/^campaign,campaignId,/);
    expect(csv.stdout).toContain('moved to another team');
    const file = join(home.dir, 'reviews.pdf');
    expect((await as('auditor', 'report', 'access-reviews', '--from', day(-1), '--to', day(1), '--format', 'pdf', '--out', file)).code).toBe(0);
    expect(execFileSync('pdftotext', [file, '-'], { encoding: 'utf8' })).toContain('decision: remove: 2');
    expect((await as('alice', 'report', 'access-reviews', '--from', day(-1), '--to', day(1))).code).not.toBe(0);
    expect((await as('auditor', 'report', 'everything', '--from', day(-1), '--to', day(1))).code).toBe(2);
  },
  TIMEOUT,
);
