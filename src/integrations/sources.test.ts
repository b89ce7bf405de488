import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IntegrationsConfig } from '../config/types.js';
import { policyInputSources } from './sources.js';
import { JiraFake, OncallWebhookFake, PagerDutyFake, ServiceNowFake } from './testing/index.js';

const PD_TOKEN = 'u+pd-secret-token-1234';
const JIRA_TOKEN = 'ATATT-jira-secret-5678';
const SN_PASSWORD = 'sn-secret-password-90';
const HOOK_SECRET = 'h'.repeat(40);
const people = { emailDomain: 'example.com', emails: { robert: 'bob@example.com' } };
const endpoint = (url: string, extra: { timeoutMs?: number; cacheTtlMs?: number } = {}) => ({
  url,
  ca: undefined,
  timeoutMs: extra.timeoutMs ?? 2_000,
  cacheTtlMs: extra.cacheTtlMs ?? 60_000,
});
const none: IntegrationsConfig = { people, pagerduty: undefined, oncallWebhook: undefined, jira: undefined, servicenow: undefined };
const never = new AbortController().signal;
const HOUR = 3_600_000;

describe('PagerDuty on-call', () => {
  const pd = new PagerDutyFake(PD_TOKEN);
  const config = (extra: { timeoutMs?: number; cacheTtlMs?: number; token?: string } = {}): IntegrationsConfig => ({
    ...none,
    pagerduty: {
      ...endpoint(pd.url, extra),
      token: extra.token ?? PD_TOKEN,
      users: { carol: 'PCAROL1' },
      services: { checkout: { escalationPolicies: ['PEPCHK'], schedules: [] }, payments: { escalationPolicies: [], schedules: ['PSPAY'] } },
    },
  });
  beforeAll(async () => {
    await pd.start();
    const now = Date.now();
    pd.users.push({ id: 'PALICE1', email: 'alice@example.com', name: 'Alice' }, { id: 'PBOB001', email: 'bob@example.com', name: 'Bob' });
    pd.oncalls.push(
      { user: 'PALICE1', escalationPolicy: 'PEPCHK', schedule: 'PSOTHER', start: new Date(now - HOUR), end: new Date(now + HOUR) },
      { user: 'PALICE1', escalationPolicy: 'PEPOTHER', schedule: 'PSPAY', level: 2, start: new Date(now - HOUR), end: new Date(now + HOUR) },
      // Ended an hour ago, and starts in an hour: neither is "now".
      { user: 'PBOB001', escalationPolicy: 'PEPCHK', start: new Date(now - 2 * HOUR), end: new Date(now - HOUR) },
      { user: 'PBOB001', escalationPolicy: 'PEPCHK', start: new Date(now + HOUR), end: new Date(now + 2 * HOUR) },
      // Carol is on call through a direct escalation-policy rule (no schedule), with no end.
      { user: 'PCAROL1', escalationPolicy: 'PEPCHK', start: null, end: null },
    );
  });
  afterAll(() => pd.stop());

  it('finds the user by email and maps escalation policies and schedules to services', async () => {
    const fact = await policyInputSources(config()).oncall('alice', ['checkout'], never);
    expect(fact).toEqual({ source: 'pagerduty', checked: true, active: true, services: ['checkout', 'payments'] });
    const users = pd.callsTo('/users').at(-1)!;
    expect(users.url.searchParams.get('query')).toBe('alice@example.com');
    const oncalls = pd.callsTo('/oncalls').at(-1)!;
    expect(oncalls.url.searchParams.getAll('user_ids[]')).toEqual(['PALICE1']);
    const since = new Date(oncalls.url.searchParams.get('since')!).getTime();
    expect(Math.abs(since - Date.now())).toBeLessThan(5_000);
    expect(new Date(oncalls.url.searchParams.get('until')!).getTime()).toBeGreaterThan(since);
  });

  it('uses the explicit user map without a user search, and people.emails for others', async () => {
    const before = pd.callsTo('/users').length;
    expect((await policyInputSources(config()).oncall('carol', [], never)).services).toEqual(['checkout']);
    expect(pd.callsTo('/users').length).toBe(before);
    const robert = await policyInputSources(config()).oncall('robert', [], never);
    expect(robert).toMatchObject({ checked: true, active: false, services: [] });
    expect(pd.callsTo('/users').at(-1)!.url.searchParams.get('query')).toBe('bob@example.com');
  });

  it('says "not on call" for someone PagerDuty does not know', async () => {
    expect(await policyInputSources(config()).oncall('zed', [], never)).toMatchObject({ checked: true, active: false });
  });

  it('reports a refused token as a failed lookup, without the token in the error', async () => {
    const fact = await policyInputSources(config({ token: 'wrong-token-abcdef' })).oncall('carol', [], never);
    expect(fact).toMatchObject({ checked: false, active: false });
    expect(fact.error).toMatch(/answered HTTP 401/);
    expect(fact.error).not.toContain('wrong-token-abcdef');
  });

  it('caches per principal for the TTL (counting calls), and does not cache failures', async () => {
    let now = 0;
    const sources = policyInputSources(config({ cacheTtlMs: 60_000 }), () => now);
    const count = () => pd.callsTo('/oncalls').length;
    const start = count();
    await Promise.all([sources.oncall('carol', [], never), sources.oncall('carol', [], never)]);
    now = 59_000;
    await sources.oncall('carol', [], never);
    expect(count() - start).toBe(1);
    await sources.oncall('alice', [], never);
    expect(count() - start).toBe(2);
    now = 60_001;
    await sources.oncall('carol', [], never);
    expect(count() - start).toBe(3);

    pd.failWith = 503;
    try {
      expect((await sources.oncall('dora', [], never)).checked).toBe(false);
      pd.failWith = undefined;
      expect((await sources.oncall('dora', [], never)).checked).toBe(true);
    } finally {
      pd.failWith = undefined;
    }
  });

  it('gives up at the timeout when PagerDuty is slow', async () => {
    pd.delayMs = 2_000;
    try {
      const started = performance.now();
      const fact = await policyInputSources(config({ timeoutMs: 300 })).oncall('carol', [], never);
      expect(performance.now() - started).toBeLessThan(1_500);
      expect(fact).toMatchObject({ checked: false, active: false, error: expect.stringMatching(/no answer within 300 ms/) });
    } finally {
      pd.delayMs = 0;
    }
  });
});

describe('on-call webhook', () => {
  const hook = new OncallWebhookFake(HOOK_SECRET);
  const config = (secret = HOOK_SECRET): IntegrationsConfig => ({ ...none, oncallWebhook: { ...endpoint(`${hook.url}/oncall`), secret } });
  beforeAll(async () => {
    await hook.start();
    hook.roster.set('alice', ['checkout', 'search']);
  });
  afterAll(() => hook.stop());

  it('asks with a signed body naming the principal and the services, and reads the answer', async () => {
    expect(await policyInputSources(config()).oncall('alice', ['checkout'], never)).toEqual({
      source: 'webhook',
      checked: true,
      active: true,
      services: ['checkout'],
    });
    expect(await policyInputSources(config()).oncall('bob', ['checkout'], never)).toMatchObject({ checked: true, active: false });
    const call = hook.calls.at(-1)!;
    expect(call.url.pathname).toBe('/oncall');
    expect(JSON.parse(call.body)).toMatchObject({ version: 1, principal: 'bob', services: ['checkout'] });
  });

  it('treats a signature the receiver refuses as a failed lookup', async () => {
    const fact = await policyInputSources(config('x'.repeat(40))).oncall('alice', [], never);
    expect(fact).toMatchObject({ checked: false, active: false, error: expect.stringMatching(/HTTP 401.*signature does not match/) });
  });
});

describe('Jira tickets', () => {
  const jira = new JiraFake('lapse@example.com', JIRA_TOKEN);
  const config = (extra: Partial<NonNullable<IntegrationsConfig['jira']>> = {}): IntegrationsConfig => ({
    ...none,
    jira: { ...endpoint(jira.url), email: 'lapse@example.com', apiToken: JIRA_TOKEN, openStatuses: [], accounts: { dana: 'acc-dana' }, ...extra },
  });
  beforeAll(async () => {
    await jira.start();
    jira.issues.set('OPS-1', {
      summary: 'checkout slow',
      status: 'In Progress',
      category: 'indeterminate',
      assignee: { accountId: 'acc-alice', email: 'alice@example.com', name: 'Alice' },
    });
    jira.issues.set('OPS-2', { summary: 'old', status: 'Done', category: 'done' });
    jira.issues.set('OPS-3', { summary: 'private email', status: 'To Do', category: 'new', assignee: { accountId: 'acc-dana', name: 'Dana' } });
  });
  afterAll(() => jira.stop());

  it('reads an open issue assigned to the requester, asking only for the fields it uses', async () => {
    expect(await policyInputSources(config()).ticket('jira', 'OPS-1', 'alice', never)).toEqual({
      system: 'jira',
      key: 'OPS-1',
      checked: true,
      exists: true,
      open: true,
      status: 'In Progress',
      summary: 'checkout slow',
      assignee: 'alice@example.com',
      assignedToRequester: true,
    });
    expect(jira.calls.at(-1)!.url.searchParams.get('fields')).toBe('summary,status,assignee');
  });

  it('knows closed (done category, or not in openStatuses), missing, and assignment by account id', async () => {
    const sources = policyInputSources(config());
    expect(await sources.ticket('jira', 'OPS-2', 'alice', never)).toMatchObject({ exists: true, open: false, status: 'Done', assignedToRequester: false });
    expect(await sources.ticket('jira', 'OPS-404', 'alice', never)).toMatchObject({ checked: true, exists: false, open: false });
    expect(await sources.ticket('jira', 'OPS-3', 'dana', never)).toMatchObject({ open: true, assignee: 'Dana', assignedToRequester: true });
    expect(await policyInputSources(config({ openStatuses: ['In Progress'] })).ticket('jira', 'OPS-3', 'dana', never)).toMatchObject({ open: false });
  });

  it('never sends something that is not an issue key, and keeps the token out of errors', async () => {
    const before = jira.calls.length;
    expect(await policyInputSources(config()).ticket('jira', '../../myself', 'alice', never)).toMatchObject({ checked: true, exists: false });
    expect(jira.calls.length).toBe(before);
    const refused = await policyInputSources(config({ apiToken: 'wrong-jira-token' })).ticket('jira', 'OPS-1', 'alice', never);
    expect(refused).toMatchObject({ checked: false, error: expect.stringMatching(/HTTP 401/) });
    expect(refused.error).not.toContain('wrong-jira-token');
  });
});

describe('ServiceNow tickets', () => {
  const basic = new ServiceNowFake({ username: 'lapse', password: SN_PASSWORD });
  const bearer = new ServiceNowFake({ token: 'sn-oauth-token-1234' });
  const base = (url: string) => ({ ...endpoint(url), table: 'incident', openStates: ['1', '2', '3'] });
  beforeAll(async () => {
    for (const fake of [basic, bearer]) {
      await fake.start();
      fake.records.set('incident', [
        {
          number: 'INC0010001',
          state: '2',
          stateLabel: 'In Progress',
          shortDescription: 'db down',
          assignee: { userName: 'alice', email: 'alice@example.com', name: 'Alice' },
        },
        { number: 'INC0010002', state: '7', stateLabel: 'Closed', shortDescription: 'done' },
      ]);
    }
  });
  afterAll(async () => {
    await basic.stop();
    await bearer.stop();
  });

  it('reads a record with basic auth: open state, label as status, assignee by user name', async () => {
    const sources = policyInputSources({ ...none, servicenow: { ...base(basic.url), auth: { kind: 'basic', username: 'lapse', password: SN_PASSWORD } } });
    expect(await sources.ticket('servicenow', 'INC0010001', 'alice', never)).toMatchObject({
      checked: true,
      exists: true,
      open: true,
      status: 'In Progress',
      summary: 'db down',
      assignee: 'alice@example.com',
      assignedToRequester: true,
    });
    expect(await sources.ticket('servicenow', 'INC0010002', 'alice', never)).toMatchObject({ exists: true, open: false, status: 'Closed' });
    expect(await sources.ticket('servicenow', 'INC0099999', 'alice', never)).toMatchObject({ checked: true, exists: false });
    const query = basic.calls.at(-1)!.url.searchParams;
    expect(query.get('sysparm_limit')).toBe('1');
    expect(query.get('sysparm_display_value')).toBe('all');
  });

  it('uses a bearer token, and never lets a ticket add terms to sysparm_query', async () => {
    const sources = policyInputSources({ ...none, servicenow: { ...base(bearer.url), auth: { kind: 'bearer', token: 'sn-oauth-token-1234' } } });
    expect(await sources.ticket('servicenow', 'INC0010001', 'bob', never)).toMatchObject({ exists: true, assignedToRequester: false });
    const before = bearer.calls.length;
    expect(await sources.ticket('servicenow', 'INC0010002^ORstate=2', 'bob', never)).toMatchObject({ exists: false });
    expect(bearer.calls.length).toBe(before);
  });

  it('reports ServiceNow being down as a failed lookup', async () => {
    const down = new ServiceNowFake({ token: 't' });
    await down.start();
    const url = down.url;
    await down.stop();
    const fact = await policyInputSources({ ...none, servicenow: { ...base(url), auth: { kind: 'bearer', token: 'sn-oauth-token-1234' } } }).ticket(
      'servicenow',
      'INC0010001',
      'alice',
      never,
    );
    expect(fact).toMatchObject({ checked: false, exists: false, error: expect.stringMatching(/ECONNREFUSED/) });
  });
});
