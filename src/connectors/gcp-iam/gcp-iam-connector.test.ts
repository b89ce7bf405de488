import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorConformance } from '../testing/conformance.js';
import { grantIdOf, type Binding } from './iam-policy.js';
import { FOLDER, LAPSE_MEMBER, openFakeProject, PROJECT, type FakeProject } from './testing/fake-project.js';

/**
 * The gcp-iam connector through the real `@googleapis/cloudresourcemanager` client against the
 * fake Cloud Resource Manager (testing/fake-resource-manager.ts says what it checks and what it
 * cannot prove). Access is asked of the fake as the requester, with the requester's own token.
 */
const signal = () => AbortSignal.timeout(20_000);

describe('gcp-iam connector against the fake Cloud Resource Manager', () => {
  let p: FakeProject;
  beforeAll(async () => {
    p = await openFakeProject();
  });
  afterAll(async () => p?.close());

  const lapseBindings = (resource = PROJECT): Binding[] => (p.fake.policy(resource).bindings ?? []).filter((b) => grantIdOf(b) !== null);

  connectorConformance({
    name: 'gcp-iam',
    connector: () => p.connector,
    grant: (overrides) => p.grant(overrides),
    hasAccess: (grant) => p.hasAccess(grant),
    createUnmanaged: async () => {
      const principal = `outsider-${Date.now()}@example.com`;
      p.fake.writeBehindBack(PROJECT, (bindings) => bindings.push({ role: 'roles/compute.viewer', members: [`user:${principal}`] }));
      return principal;
    },
  });

  it('writes one conditional binding per grant: version 3, the grant in its title, the backstop in its expression', async () => {
    const g = p.grant({ notAfter: new Date('2031-05-06T07:08:09.999Z') });
    const { handle } = await p.connector.provision(g, signal());
    expect(handle).toEqual({ resource: PROJECT, role: 'roles/compute.viewer', member: `user:${g.principalId}` });
    const policy = p.fake.policy(PROJECT);
    expect(policy.version).toBe(3);
    expect(policy.bindings).toContainEqual({
      role: 'roles/compute.viewer',
      members: [`user:${g.principalId}`],
      condition: {
        title: `lapse:${g.grantId}`,
        description: 'Lapse grant on target gcp, entitlement viewer',
        expression: 'request.time < timestamp("2031-05-06T07:08:09Z")',
      },
    });
    // Lapse's own binding and the policy's other bindings are untouched.
    expect(policy.bindings).toContainEqual({ role: 'roles/resourcemanager.projectIamAdmin', members: [LAPSE_MEMBER] });
    await p.connector.revoke(g, handle, signal());
    expect(p.fake.calls.filter((c) => c.method === 'setIamPolicy' && c.caller === LAPSE_MEMBER).every((c) => c.etagSent)).toBe(true);
  });

  it('grants on a folder as the entitlement says, and the condition ends the access by itself', async () => {
    const t = p.target();
    const g = p.grant({ target: t, entitlement: t.entitlements.get('bq')!, notAfter: new Date(Date.now() + 2_000) });
    await p.connector.provision(g, signal());
    expect(await p.hasAccess(g, FOLDER, 'bigquery.tables.getData')).toBe(true);
    expect(await p.hasAccess(g, PROJECT, 'bigquery.tables.getData')).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect(await p.hasAccess(g, FOLDER, 'bigquery.tables.getData')).toBe(false);
    await p.connector.revoke(g, null, signal());
    expect(lapseBindings(FOLDER)).toEqual([]);
  });

  it('moves the backstop on settleExpiry and extend, and never re-creates a binding a revoke removed', async () => {
    const g = p.grant({ notAfter: new Date('2031-01-01T00:01:00Z') });
    const { handle } = await p.connector.provision(g, signal());
    await p.connector.settleExpiry(g, handle, signal());
    await p.connector.extend({ ...g, notAfter: new Date('2031-01-01T02:00:00Z') }, handle, signal());
    expect(lapseBindings().find((b) => grantIdOf(b) === g.grantId)?.condition?.expression).toBe('request.time < timestamp("2031-01-01T02:00:00Z")');
    await p.connector.revoke(g, handle, signal());
    await expect(p.connector.extend({ ...g, notAfter: new Date('2031-01-01T03:00:00Z') }, handle, signal())).rejects.toThrow(
      /has no binding for grant grt_\w+ to extend/,
    );
    expect(lapseBindings().some((b) => grantIdOf(b) === g.grantId)).toBe(false);
  });

  it('a repeated provision leaves one binding, and two grants of the same role to one principal are removed one at a time', async () => {
    const first = p.grant();
    const second = p.grant({ principalId: first.principalId });
    await p.connector.provision(first, signal());
    await p.connector.provision(first, signal());
    await p.connector.provision(second, signal());
    expect(lapseBindings().filter((b) => b.members?.includes(`user:${first.principalId}`))).toHaveLength(2);
    expect(p.connector.accessKey(first)).not.toBe(p.connector.accessKey(second));
    await p.connector.revoke(first, null, signal());
    expect(await p.hasAccess(first)).toBe(true);
    await p.connector.revoke(second, null, signal());
    expect(await p.hasAccess(first)).toBe(false);
  });

  it('purges expired Lapse bindings on every write and in reconciliation, leaving everything else', async () => {
    const expired = (id: string): Binding => ({
      role: 'roles/compute.viewer',
      members: ['user:gone@example.com'],
      condition: {
        title: `lapse:${id}`,
        description: 'Lapse grant on target other, entitlement viewer',
        expression: 'request.time < timestamp("2020-01-01T00:00:00Z")',
      },
    });
    const foreign: Binding = {
      role: 'roles/compute.viewer',
      members: ['user:temp@example.com'],
      condition: { title: 'expires', expression: 'request.time < timestamp("2020-01-01T00:00:00Z")' },
    };
    p.fake.writeBehindBack(PROJECT, (bindings) => bindings.push(expired('grt_0000000000000000000000old1'), foreign));
    const g = p.grant();
    await p.connector.provision(g, signal());
    expect(lapseBindings().map(grantIdOf)).not.toContain('grt_0000000000000000000000old1');
    expect(p.fake.policy(PROJECT).bindings).toContainEqual(foreign);
    await p.connector.revoke(g, null, signal());

    p.fake.writeBehindBack(PROJECT, (bindings) => bindings.push(expired('grt_0000000000000000000000old2')));
    const listed = await p.connector.listAccess(p.target(), signal());
    expect(listed.some((a) => a.grantId === 'grt_0000000000000000000000old2')).toBe(false);
    expect(lapseBindings().map(grantIdOf)).not.toContain('grt_0000000000000000000000old2');
    p.fake.writeBehindBack(PROJECT, (bindings) =>
      bindings.splice(
        bindings.findIndex((b) => b.condition?.title === 'expires'),
        1,
      ),
    );
  });

  it('lists only its own target\u2019s Lapse bindings, maps members back to principals, and removes a standing member alone', async () => {
    const t = p.target('gcp', { memberType: 'group', members: { alice: 'user:alice@example.com' } });
    const group = p.grant({ target: t, principalId: 'sre@example.com' });
    const alice = p.grant({ target: t, principalId: 'alice' });
    await p.connector.provision(group, signal());
    await p.connector.provision(alice, signal());
    const other = p.grant({ target: p.target('other') });
    await p.connector.provision(other, signal());
    p.fake.writeBehindBack(PROJECT, (bindings) => bindings.push({ role: 'roles/compute.viewer', members: ['user:bob@example.com', 'group:ops@example.com'] }));
    const listed = await p.connector.listAccess(t, signal());
    expect(listed).toEqual(
      expect.arrayContaining([
        { account: 'group:sre@example.com', principalId: 'sre@example.com', entitlement: 'viewer', grantId: group.grantId },
        { account: 'user:alice@example.com', principalId: 'alice', entitlement: 'viewer', grantId: alice.grantId },
        { account: 'user:bob@example.com', principalId: 'user:bob@example.com', entitlement: 'viewer', grantId: null },
        { account: 'group:ops@example.com', principalId: 'ops@example.com', entitlement: 'viewer', grantId: null },
      ]),
    );
    expect(listed.some((a) => a.grantId === other.grantId)).toBe(false);
    expect(listed.some((a) => a.account === LAPSE_MEMBER)).toBe(false);
    await p.connector.removeAccess(
      t,
      listed.find((a) => a.account === 'user:bob@example.com')!,
      signal(),
    );
    expect(p.fake.policy(PROJECT).bindings).toContainEqual({ role: 'roles/compute.viewer', members: ['group:ops@example.com'] });
    for (const g of [group, alice, other]) await p.connector.revoke(g, null, signal());
    p.fake.writeBehindBack(PROJECT, (bindings) =>
      bindings.splice(
        bindings.findIndex((b) => b.members?.includes('group:ops@example.com')),
        1,
      ),
    );
  });

  it('refuses a principal that cannot be an IAM member, naming the mapping to fix', async () => {
    await expect(p.connector.provision(p.grant({ principalId: 'not an email' }), signal())).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringMatching(/principal not an email cannot be an IAM member/),
      details: { where: 'targets.gcp.settings.members' },
    });
    const sa = p.target('gcp', { memberType: 'serviceAccount' });
    await expect(p.connector.provision(p.grant({ target: sa, principalId: 'ci@example.com' }), signal())).rejects.toThrow(/is not a service account/);
  });

  it('stops at IAM\u2019s 1,500-principal limit with a clear error, before writing', async () => {
    p.fake.writeBehindBack(PROJECT, (bindings) =>
      bindings.push({ role: 'roles/browser', members: Array.from({ length: 1_499 }, (_, i) => `user:filler-${i}@example.com`) }),
    );
    const writes = p.fake.calls.filter((c) => c.method === 'setIamPolicy').length;
    await expect(p.connector.provision(p.grant(), signal())).rejects.toThrow(/would hold 1501 principals, over IAM's limit of 1500/);
    expect(p.fake.calls.filter((c) => c.method === 'setIamPolicy').length).toBe(writes);
    p.fake.writeBehindBack(PROJECT, (bindings) =>
      bindings.splice(
        bindings.findIndex((b) => b.role === 'roles/browser'),
        1,
      ),
    );
  });

  it('checkTarget names the missing permission and the role to grant', async () => {
    await p.connector.checkTarget(p.target(), signal());
    p.fake.writeBehindBack(FOLDER, (bindings) => {
      bindings[0] = { role: 'roles/iam.securityReviewer', members: [LAPSE_MEMBER] };
    });
    await expect(p.connector.checkTarget(p.target(), signal())).rejects.toMatchObject({
      message: expect.stringMatching(/lacks resourcemanager\.folders\.setIamPolicy on folders\/1234$/),
      details: { hint: expect.stringMatching(/roles\/resourcemanager\.folderIamAdmin on folders\/1234/) },
    });
    await expect(p.connector.provision(p.grant({ entitlement: p.target().entitlements.get('bq')! }), signal())).rejects.toMatchObject({
      message: expect.stringMatching(/was denied: Lapse's identity lacks resourcemanager\.folders\.setIamPolicy/),
    });
    p.fake.writeBehindBack(FOLDER, (bindings) => {
      bindings[0] = { role: 'roles/resourcemanager.folderIamAdmin', members: [LAPSE_MEMBER] };
    });
    await expect(p.connector.checkTarget(p.target('gcp', { resource: 'projects/missing-project' }), signal())).rejects.toMatchObject({
      message: expect.stringMatching(/testIamPermissions on projects\/missing-project was denied/),
      details: { hint: expect.stringMatching(/if the project does not exist, fix the entitlement's resource/) },
    });
  });

  it('fetches a new token when Google says the old one expired, and never puts a token in an error', async () => {
    p.fake.expireTokens();
    const tokens = () => p.fake.calls.filter((c) => c.method === 'token' && c.caller === LAPSE_MEMBER).length;
    const before = tokens();
    const g = p.grant();
    await p.connector.provision(g, signal());
    expect(tokens()).toBe(before + 1);
    await p.connector.revoke(g, null, signal());
    const stranger = new (await import('./gcp-iam-connector.js')).GcpIamConnector({
      tokenSource: async () => ({ accessToken: 'ya29.not-a-token-the-fake-issued', expiresAt: Date.now() + 60_000 }),
    });
    const error = (await stranger.listAccess(p.target(), signal()).catch((e: unknown) => e)) as Error & { details: unknown };
    expect(error.message).toMatch(/getIamPolicy on projects\/acme-prod answered HTTP 401 UNAUTHENTICATED/);
    expect(JSON.stringify({ m: error.message, d: error.details })).not.toContain('not-a-token');
  });

  it('validates settings at config load: paths, what is wrong and how to fix it', () => {
    const bad = p.target(
      'gcp',
      { rootUrl: 'http://crm.example.com/', credentials: '{"type":"authorized_user"}', memberType: 'robot', timeoutMs: 5, region: 'eu' },
      { owner: { role: 'roles/owner' }, odd: { role: 'admin', resource: 'project/x' } },
    );
    expect(p.connector.validateSettings(bad)).toEqual([
      expect.stringMatching(/^targets\.gcp\.settings\.region: unknown setting/),
      expect.stringMatching(/^targets\.gcp\.settings\.credentials: must be a service-account key .* \(its "type" is not "service_account"\)$/),
      expect.stringMatching(/^targets\.gcp\.settings\.rootUrl: plain http is allowed to loopback only/),
      expect.stringMatching(/^targets\.gcp\.settings\.timeoutMs: must be a whole number from 1000 to 120000$/),
      expect.stringMatching(/^targets\.gcp\.settings\.memberType: must be one of user, group, serviceAccount/),
      expect.stringMatching(/^targets\.gcp\.entitlements\.owner\.settings\.role: roles\/owner is a basic role, which IAM cannot grant with a condition/),
      expect.stringMatching(/^targets\.gcp\.entitlements\.odd\.settings\.role: must be a role name/),
      expect.stringMatching(/^targets\.gcp\.entitlements\.odd\.settings\.resource: must be projects\/<project id>/),
    ]);
    expect(p.connector.validateSettings(p.target('gcp', { members: { alice: 'alice@example.com', bob: 'allUsers' } }))).toEqual([
      expect.stringMatching(/settings\.members\.alice: must start with user:, group:, serviceAccount:/),
      expect.stringMatching(/settings\.members\.bob: must start with/),
    ]);
    expect(p.connector.validateSettings(p.target('gcp', { resource: undefined }, { viewer: { role: 'roles/compute.viewer' } }))).toEqual([
      expect.stringMatching(/entitlements\.viewer\.settings\.resource: missing/),
    ]);
  });
});
