import { randomBytes } from 'node:crypto';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { AwsError, AwsFake } from '../aws/testing/aws-fake.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec, ProvisionResult } from '../types.js';
import { AwsIamRoleConnector } from './aws-iam-role-connector.js';
import { ACCOUNT, LAPSE_IDENTITY, LAPSE_KEY, StsIamModel } from './testing/sts-iam-model.js';

/**
 * The connector through the official SDK against the local STS/IAM fake (testing/sts-iam-model.ts):
 * SigV4, the Query protocol, AssumeRole's checks, the role's inline policies and the explicit
 * denies they hold. The requester's side is the SDK too, signing with the vended credentials.
 */
const REGION = 'us-east-1';
const fake = new AwsFake(REGION);
const model = new StsIamModel(fake);
let endpoint = '';
const MIN = 60_000;

beforeAll(async () => {
  endpoint = await fake.listen();
});
afterAll(() => fake.close());

function target(roleArn: string, entitlement: Record<string, unknown> = {}, settings: Record<string, unknown> = {}): TargetConfig {
  return {
    name: 'aws',
    connector: 'aws-iam-role',
    description: '',
    settings: { region: REGION, credentials: LAPSE_KEY, endpoints: { sts: endpoint, iam: endpoint }, maxAttempts: 4, timeoutMs: 5_000, ...settings },
    labels: {},
    entitlements: new Map([['admin', { name: 'admin', target: 'aws', description: '', settings: { roleArn, ...entitlement }, labels: {} }]]),
  };
}

function grantOn(t: TargetConfig, overrides: Partial<GrantSpec> = {}): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId: `user-${randomBytes(3).toString('hex')}@example.com`,
    target: t,
    entitlement: t.entitlements.get('admin')!,
    durationMs: 30 * MIN,
    notAfter: new Date(Date.now() + 30 * MIN),
    parameters: {},
    ...overrides,
  };
}

/** The requester's own SDK with the vended credentials: a call the role's permissions allow, unless denied. */
async function canUse(credentials: Readonly<Record<string, string>> | undefined, roleName: string): Promise<boolean> {
  const iam = new IAMClient({
    region: REGION,
    endpoint,
    maxAttempts: 1,
    credentials: { accessKeyId: credentials!.AccessKeyId!, secretAccessKey: credentials!.SecretAccessKey!, sessionToken: credentials!.SessionToken! },
  });
  try {
    await iam.send(new GetRoleCommand({ RoleName: roleName }));
    return true;
  } catch (error) {
    if (['AccessDeniedException', 'AccessDenied', 'ExpiredTokenException', 'ExpiredToken'].includes((error as Error).name)) return false;
    throw error;
  }
}

const signal = () => AbortSignal.timeout(20_000);
const connector = new AwsIamRoleConnector();
const conformanceRole = model.addRole('conformance', { path: '/lapse/' });
const conformanceTarget = () => target(conformanceRole);

connectorConformance({
  name: 'aws-iam-role against the STS/IAM fake',
  connector: () => connector,
  grant: (overrides) => grantOn(conformanceTarget(), overrides),
  hasAccess: (_grant, provisioned: ProvisionResult) => canUse(provisioned.credentials, 'conformance'),
  createUnmanaged: async () => {
    const outsider = `arn:aws:iam::${ACCOUNT}:user/outsider-${randomBytes(3).toString('hex')}`;
    const trust = model.trust('conformance') as { Statement: Record<string, unknown>[] };
    trust.Statement.push({ Effect: 'Allow', Principal: { AWS: outsider }, Action: 'sts:AssumeRole' });
    model.setTrust('conformance', trust);
    return outsider;
  },
});

describe('aws-iam-role against the STS/IAM fake', () => {
  let roleName = '';
  let roleArn = '';
  beforeEach(() => {
    roleName = `role-${randomBytes(4).toString('hex')}`;
    roleArn = model.addRole(roleName, { path: '/lapse/', maxSessionDuration: 7200 });
  });

  const assumeRoleCalls = () => fake.calls.filter((c) => c.operation === 'AssumeRole' && (c.input as Record<string, string>).RoleArn === roleArn);

  it('vends credentials for the grant: source identity, transitive grant tag, its own session name, the time left', async () => {
    const t = target(roleArn);
    const g = grantOn(t, { principalId: 'alice@example.com', notAfter: new Date(Date.now() + 40 * MIN) });
    const provisioned = await connector.provision(g, signal());
    const input = assumeRoleCalls().at(-1)!.input as Record<string, string>;
    expect(input).toMatchObject({
      SourceIdentity: 'alice@example.com',
      RoleSessionName: `alice@example.com.${g.grantId.slice(4)}`,
      'Tags.member.1.Key': 'lapse-grant',
      'Tags.member.1.Value': g.grantId,
      'TransitiveTagKeys.member.1': 'lapse-grant',
    });
    expect(Number(input.DurationSeconds)).toBeGreaterThan(39 * 60);
    expect(Number(input.DurationSeconds)).toBeLessThanOrEqual(40 * 60);
    const c = provisioned.credentials!;
    expect(c).toMatchObject({ AccessKeyId: expect.stringMatching(/^ASIA/), region: REGION, roleArn });
    expect(c.credentialsFile).toContain(`aws_session_token = ${c.SessionToken}`);
    expect(c.env).toContain(`export AWS_SECRET_ACCESS_KEY='${c.SecretAccessKey}'`);
    expect(JSON.stringify(provisioned.handle)).not.toContain(c.SecretAccessKey);
    expect(provisioned.handle).toMatchObject({ roleArn, backstop: true, sessionExpiresAt: c.Expiration });
    const sts = new STSClient({
      region: REGION,
      endpoint,
      credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! },
    });
    expect((await sts.send(new GetCallerIdentityCommand({}))).Arn).toBe(
      `arn:aws:sts::${ACCOUNT}:assumed-role/${roleName}/alice@example.com.${g.grantId.slice(4)}`,
    );
    await connector.revoke(g, provisioned.handle, signal());
    expect(await canUse(c, roleName)).toBe(false);
  });

  it('caps the session at the role and entitlement maximum, and floors it at 900 s with the backstop ending it on time', async () => {
    const long = grantOn(target(roleArn), { notAfter: new Date(Date.now() + 5 * 3_600_000) });
    await connector.provision(long, signal());
    expect((assumeRoleCalls().at(-1)!.input as Record<string, string>).DurationSeconds).toBe('7200');
    await connector.provision(grantOn(target(roleArn, { maxSessionDuration: 1800 }), { notAfter: long.notAfter }), signal());
    expect((assumeRoleCalls().at(-1)!.input as Record<string, string>).DurationSeconds).toBe('1800');

    const short = grantOn(target(roleArn), { notAfter: new Date(Date.now() + 2 * MIN) });
    const provisioned = await connector.provision(short, signal());
    expect((assumeRoleCalls().at(-1)!.input as Record<string, string>).DurationSeconds).toBe('900');
    expect(await canUse(provisioned.credentials, roleName)).toBe(true);
    // Lapse is down at the grant's end: the session lives on (AWS's 15 minutes), the backstop denies it.
    model.clockOffsetMs = 3 * MIN;
    try {
      expect(await canUse(provisioned.credentials, roleName)).toBe(false);
      expect(await canUse((await connector.provision(grantOn(target(roleArn)), signal())).credentials, roleName)).toBe(true);
    } finally {
      model.clockOffsetMs = 0;
    }
  });

  it('extend issues fresh credentials and moves the backstop; activation moves it to the actual end', async () => {
    const t = target(roleArn);
    const g = grantOn(t, { notAfter: new Date(Date.now() + 20 * MIN) });
    const first = await connector.provision(g, signal());
    await connector.settleExpiry(g, first.handle, signal());
    const extended = { ...g, notAfter: new Date(Date.now() + 50 * MIN) };
    const { credentials } = await connector.extend(extended, first.handle, signal());
    expect(credentials!.AccessKeyId).not.toBe(first.credentials!.AccessKeyId);
    model.clockOffsetMs = 30 * MIN;
    try {
      expect(await canUse(credentials, roleName)).toBe(true);
    } finally {
      model.clockOffsetMs = 0;
    }
    const settled = { ...extended, notAfter: new Date(Date.now() + 10 * MIN) };
    await connector.settleExpiry(settled, first.handle, signal());
    model.clockOffsetMs = 11 * MIN;
    try {
      expect(await canUse(credentials, roleName)).toBe(false);
    } finally {
      model.clockOffsetMs = 0;
    }
    await connector.revoke(settled, first.handle, signal());
  });

  it('reports propagation pending while IAM reads are stale, writes again if needed, and converges', async () => {
    const t = target(roleArn);
    const g = grantOn(t);
    const provisioned = await connector.provision(g, signal());
    model.staleReads(2);
    const pending = await connector.revoke(g, provisioned.handle, signal());
    expect(pending).toMatchObject({ propagationPending: expect.stringContaining('eventually consistent'), recheckInMs: 2_000 });
    expect(await canUse(provisioned.credentials, roleName)).toBe(false);
    expect(await connector.revoke(g, provisioned.handle, signal())).toBeUndefined();
    expect(model.policy(roleName, 'lapse-revocations')).toContain(g.grantId);
  });

  it('revokes on the role the sessions came from, even after the entitlement moved to another role', async () => {
    const g = grantOn(target(roleArn));
    const provisioned = await connector.provision(g, signal());
    const moved = target(model.addRole(`${roleName}-new`));
    await connector.revoke({ ...g, target: moved, entitlement: moved.entitlements.get('admin')! }, provisioned.handle, signal());
    expect(await canUse(provisioned.credentials, roleName)).toBe(false);
  });

  it('does not let a stale read drop a revocation it wrote before', async () => {
    const t = target(roleArn);
    const [a, b] = [grantOn(t), grantOn(t)];
    const [pa, pb] = [await connector.provision(a, signal()), await connector.provision(b, signal())];
    expect(await connector.revoke(a, pa.handle, signal())).toBeUndefined();
    // IAM answers the next read with the policy as it was before a's revoke.
    model.staleReads(1);
    await connector.revoke(b, pb.handle, signal());
    expect(model.policy(roleName, 'lapse-revocations')).toContain(a.grantId);
    expect(await canUse(pa.credentials, roleName)).toBe(false);
    expect(await canUse(pb.credentials, roleName)).toBe(false);
  });

  it('absorbs throttling and 5xx from STS and IAM through the SDK retries', async () => {
    const failed = new Map<string, number>();
    const remove = fake.inject((call) => {
      const count = failed.get(call.operation) ?? 0;
      if (!['AssumeRole', 'GetRolePolicy', 'PutRolePolicy'].includes(call.operation) || count >= 2) return undefined;
      failed.set(call.operation, count + 1);
      return count === 0 ? new AwsError('Throttling', 'Rate exceeded', 400) : new AwsError('ServiceFailure', 'internal', 500);
    });
    try {
      const g = grantOn(target(roleArn));
      const provisioned = await connector.provision(g, signal());
      await connector.revoke(g, provisioned.handle, signal());
      expect(await canUse(provisioned.credentials, roleName)).toBe(false);
      expect([...failed.values()]).toEqual([2, 2, 2]);
    } finally {
      remove();
    }
  });

  it('serialises concurrent changes to one role into a few writes and loses none', async () => {
    const t = target(roleArn);
    const grants = Array.from({ length: 40 }, () => grantOn(t));
    const provisioned = await Promise.all(grants.map((g) => connector.provision(g, signal())));
    const writesBefore = connector.writer.writes;
    await Promise.all(grants.map((g, i) => connector.revoke(g, provisioned[i]!.handle, signal())));
    expect(connector.writer.writes - writesBefore).toBeLessThan(10);
    for (const p of provisioned) expect(await canUse(p.credentials, roleName)).toBe(false);
  });

  it('when the role has no room left, folds revocations into one cutoff and never fails the revoke', async () => {
    // The role's own inline policy leaves Lapse about 1,400 characters.
    const filler = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Sid: 'Own', Effect: 'Allow', Action: 's3:GetObject', Resource: Array.from({ length: 315 }, (_, i) => `arn:aws:s3:::bucket-${i}/*`) }],
    });
    model.setPolicy(roleName, 'own-permissions', filler);
    const t = target(roleArn);
    const live = await connector.provision(grantOn(t), signal());
    const grants = Array.from({ length: 40 }, () => grantOn(t));
    const provisioned = [];
    for (const g of grants) provisioned.push(await connector.provision(g, signal()));
    expect(provisioned.some((p) => p.handle.backstop === false)).toBe(true);
    const putCalls = () => fake.calls.filter((c) => c.operation === 'PutRolePolicy').length;
    const before = putCalls();
    for (const [i, g] of grants.entries()) expect(await connector.revoke(g, provisioned[i]!.handle, signal())).toBeUndefined();
    expect(putCalls() - before).toBeLessThanOrEqual(grants.length * 2);
    for (const p of provisioned) expect(await canUse(p.credentials, roleName)).toBe(false);
    expect(model.policy(roleName, 'lapse-revocations')).toContain('aws:TokenIssueTime');
    // The blast radius: a live grant's session issued before the cutoff is cut too; a new one works.
    expect(await canUse(live.credentials, roleName)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the cutoff is rounded up to the next second
    expect(await canUse((await connector.provision(grantOn(t), signal())).credentials, roleName)).toBe(true);
  });

  it('checkTarget names the permission that is missing', async () => {
    await connector.checkTarget(target(roleArn), signal());
    const trust = model.trust(roleName) as { Statement: { Action: string[] }[] };
    trust.Statement[0]!.Action = ['sts:AssumeRole', 'sts:SetSourceIdentity'];
    model.setTrust(roleName, trust);
    await expect(connector.checkTarget(target(roleArn), signal())).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringContaining('not authorized to perform: sts:TagSession'),
      details: { missingPermission: 'sts:TagSession', hint: expect.stringContaining("role's trust policy") },
    });
    trust.Statement[0]!.Action = ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'];
    model.setTrust(roleName, trust);
    model.refuse('iam:PutRolePolicy');
    try {
      await expect(connector.checkTarget(target(roleArn), signal())).rejects.toMatchObject({ details: { missingPermission: 'iam:PutRolePolicy' } });
    } finally {
      model.allow('iam:PutRolePolicy');
    }
    await expect(connector.checkTarget(target(roleArn, { externalId: 'wrong-id' }), signal())).resolves.toBeUndefined();
  });

  it('lists and removes a principal trusted behind Lapse’s back, but never Lapse’s own way in', async () => {
    const t = target(roleArn);
    const outsider = `arn:aws:iam::${ACCOUNT}:role/someone-else`;
    const trust = model.trust(roleName) as { Statement: Record<string, unknown>[] };
    trust.Statement.push({
      Effect: 'Allow',
      Principal: { AWS: [outsider, `arn:aws:iam::${ACCOUNT}:root`], Service: 'ec2.amazonaws.com' },
      Action: 'sts:AssumeRole',
    });
    model.setTrust(roleName, trust);
    const listed = await connector.listAccess(t, signal());
    expect(listed.map((a) => a.account).sort()).toEqual([outsider, `arn:aws:iam::${ACCOUNT}:root`, 'ec2.amazonaws.com'].sort());
    await connector.removeAccess(
      t,
      listed.find((a) => a.account === outsider)!,
      signal(),
    );
    await connector.removeAccess(
      t,
      listed.find((a) => a.account === 'ec2.amazonaws.com')!,
      signal(),
    );
    expect(JSON.stringify(model.trust(roleName))).not.toContain(outsider);
    expect(JSON.stringify(model.trust(roleName))).toContain(LAPSE_IDENTITY);
    const lapse = { account: LAPSE_IDENTITY, principalId: LAPSE_IDENTITY, entitlement: 'admin', grantId: null };
    await expect(connector.removeAccess(t, lapse, signal())).rejects.toMatchObject({ code: 'conflict' });
  });

  it('refuses a principal AWS cannot record as source identity, and bad settings with where and how', async () => {
    await expect(connector.provision(grantOn(target(roleArn), { principalId: 'Alice Smith' }), signal())).rejects.toMatchObject({
      code: 'validation_failed',
      message: expect.stringContaining('cannot be an AWS source identity'),
    });
    expect(
      connector.validateSettings(target('arn:aws:iam::12:role/x', { maxSessionDuration: 60, externalId: 'a b', sessionPolicy: '{"Statement":[]}', colour: 1 })),
    ).toEqual([
      expect.stringContaining('entitlements.admin.settings.colour: unknown setting'),
      expect.stringContaining('entitlements.admin.settings.roleArn: must be an IAM role ARN'),
      expect.stringContaining('entitlements.admin.settings.maxSessionDuration: must be a whole number from 900 to 43200'),
      expect.stringContaining('entitlements.admin.settings.externalId: must be 2 to 1224 characters'),
      expect.stringContaining('entitlements.admin.settings.sessionPolicy: must say Version: "2012-10-17"'),
    ]);
    const huge = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: Array.from({ length: 150 }, (_, i) => `arn:aws:s3:::b${i}/*`) }],
    };
    expect(connector.validateSettings(target(roleArn, { sessionPolicy: huge }))).toEqual([expect.stringContaining('AWS accepts at most 2048')]);
  });

  it('passes the session policy and external id, and fails without secrets when Lapse’s key is wrong', async () => {
    const arn = model.addRole(`${roleName}-ext`, { externalId: 'lapse-prod' });
    const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] };
    const g = grantOn(target(arn, { externalId: 'lapse-prod', sessionPolicy: policy }));
    await connector.revoke(g, (await connector.provision(g, signal())).handle, signal());
    const input = fake.calls.filter((c) => c.operation === 'AssumeRole').at(-1)!.input as Record<string, string>;
    expect(input).toMatchObject({ ExternalId: 'lapse-prod', Policy: JSON.stringify(policy) });
    await expect(connector.provision(grantOn(target(arn)), signal())).rejects.toMatchObject({ details: { missingPermission: 'sts:AssumeRole' } });
    const wrong = `wrong-${randomBytes(16).toString('hex')}`;
    const error = await connector
      .provision(grantOn(target(roleArn, {}, { credentials: { ...LAPSE_KEY, secretAccessKey: wrong } })), signal())
      .catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/AWS did not accept Lapse's credentials/);
    expect(JSON.stringify({ m: String(error), d: (error as { details?: unknown }).details })).not.toContain(wrong);
  });
});
