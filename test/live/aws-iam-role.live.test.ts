import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/types.js';
import { AwsIamRoleConnector } from '../../src/connectors/aws-iam-role/index.js';
import { newId } from '../../src/domain/ids.js';

/**
 * aws-iam-role against a real AWS account (`npm run test:live -- aws-iam-role`). Needs:
 *
 * - LAPSE_LIVE_AWS_REGION, e.g. eu-west-1;
 * - LAPSE_LIVE_AWS_ROLE_ARN: a role whose trust policy lets Lapse's credentials do
 *   sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity, and whose permissions allow
 *   iam:GetRole on itself (the call that proves the vended credentials work, then stop working);
 * - Lapse's own credentials from the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
 *   AWS_PROFILE, …) with the permissions in docs/connectors/aws-iam-role.md.
 *
 * It writes to the role's `lapse-revocations` inline policy; the statements expire by themselves.
 */
const REGION = process.env.LAPSE_LIVE_AWS_REGION ?? '';
const ROLE_ARN = process.env.LAPSE_LIVE_AWS_ROLE_ARN ?? '';
const configured = REGION !== '' && ROLE_ARN !== '';
const ROLE_NAME = ROLE_ARN.split('/').at(-1) ?? '';

const NEEDS = 'set LAPSE_LIVE_AWS_REGION and LAPSE_LIVE_AWS_ROLE_ARN, and AWS credentials for Lapse (default chain), to run it';
if (!configured) process.stderr.write(`aws-iam-role live test skipped: ${NEEDS}\n`);

function target(): TargetConfig {
  return {
    name: 'aws-live',
    connector: 'aws-iam-role',
    description: '',
    settings: { region: REGION },
    labels: {},
    entitlements: new Map([['live', { name: 'live', target: 'aws-live', description: '', settings: { roleArn: ROLE_ARN }, labels: {} }]]),
  };
}

async function canUse(credentials: Readonly<Record<string, string>>): Promise<boolean> {
  const iam = new IAMClient({
    region: REGION,
    maxAttempts: 1,
    credentials: { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! },
  });
  try {
    await iam.send(new GetRoleCommand({ RoleName: ROLE_NAME }));
    return true;
  } catch (error) {
    if (/AccessDenied/.test((error as Error).name)) return false;
    throw error;
  }
}

async function eventually(what: string, check: () => Promise<boolean>, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${boundMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

describe.skipIf(!configured)(`aws-iam-role against real AWS (${NEEDS})`, () => {
  it('vends working credentials, then denies them after revoke', async () => {
    const connector = new AwsIamRoleConnector();
    const t = target();
    await connector.checkTarget(t, AbortSignal.timeout(60_000));
    const grant = {
      grantId: newId('grant'),
      principalId: 'lapse-live-test@example.com',
      target: t,
      entitlement: t.entitlements.get('live')!,
      durationMs: 20 * 60_000,
      notAfter: new Date(Date.now() + 20 * 60_000),
      parameters: {},
    };
    const provisioned = await connector.provision(grant, AbortSignal.timeout(60_000));
    const credentials = provisioned.credentials!;
    const sts = new STSClient({
      region: REGION,
      credentials: { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! },
    });
    expect((await sts.send(new GetCallerIdentityCommand({}))).Arn).toContain(grant.grantId.slice(4));
    await eventually('the vended session working', () => canUse(credentials), 60_000);
    const listed = await connector.listAccess(t, AbortSignal.timeout(60_000));
    expect(listed).toContainEqual(expect.objectContaining({ grantId: grant.grantId, principalId: grant.principalId }));

    await eventually('revoke confirmed by read-back', async () => !(await connector.revoke(grant, provisioned.handle, AbortSignal.timeout(60_000))), 120_000);
    await eventually('the deny taking effect', async () => !(await canUse(credentials)), 120_000);
  });
});
