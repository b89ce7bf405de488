import { IAMClient, ListAccountAliasesCommand } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/types.js';
import { AwsIdentityCenterConnector } from '../../src/connectors/index.js';
import { newId } from '../../src/domain/ids.js';

/**
 * Live smoke test of aws-identity-center against a real IAM Identity Center instance
 * (`npm run test:live -- aws-identity-center`). Lapse's own credentials come from the default
 * chain (AWS_PROFILE, AWS_ACCESS_KEY_ID…). It assigns the permission set to the user on the
 * account, proves the user can get role credentials for it from the AWS access portal and use
 * them, revokes (with revokeSessions), and proves both that the portal refuses new credentials
 * and that the credentials obtained before the revoke are denied, polling each for up to 5 min.
 *
 * The portal step needs the test user's own portal token: sign in as that user with
 * `aws sso login --profile <user's profile>` and pass the `accessToken` from
 * ~/.aws/sso/cache/<hash>.json as LAPSE_LIVE_AWS_IC_PORTAL_TOKEN. The permission set must allow
 * iam:ListAccountAliases (ReadOnlyAccess does), the call used to prove a session works.
 */
const env = {
  region: process.env.LAPSE_LIVE_AWS_REGION,
  instanceArn: process.env.LAPSE_LIVE_AWS_IC_INSTANCE_ARN,
  identityStoreId: process.env.LAPSE_LIVE_AWS_IC_IDENTITY_STORE_ID,
  permissionSet: process.env.LAPSE_LIVE_AWS_IC_PERMISSION_SET,
  account: process.env.LAPSE_LIVE_AWS_IC_ACCOUNT,
  userName: process.env.LAPSE_LIVE_AWS_IC_USER,
  portalToken: process.env.LAPSE_LIVE_AWS_IC_PORTAL_TOKEN,
};
const configured = Object.values(env).every((v) => typeof v === 'string' && v.length > 0);
const NEEDED =
  'LAPSE_LIVE_AWS_REGION, LAPSE_LIVE_AWS_IC_INSTANCE_ARN, LAPSE_LIVE_AWS_IC_IDENTITY_STORE_ID, LAPSE_LIVE_AWS_IC_PERMISSION_SET, LAPSE_LIVE_AWS_IC_ACCOUNT, LAPSE_LIVE_AWS_IC_USER and LAPSE_LIVE_AWS_IC_PORTAL_TOKEN';
const PROPAGATION_MS = 5 * 60_000;

interface RoleCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

/** The AWS access portal's GetRoleCredentials, as the CLI calls it with the user's token; null when refused. */
async function portalCredentials(roleName: string): Promise<RoleCredentials | null> {
  const url = new URL(`https://portal.sso.${env.region}.amazonaws.com/federation/credentials`);
  url.searchParams.set('account_id', env.account!);
  url.searchParams.set('role_name', roleName);
  const response = await fetch(url, { headers: { 'x-amz-sso_bearer_token': env.portalToken! } });
  if (response.status === 401 || response.status === 403) return null;
  if (!response.ok) throw new Error(`the access portal answered HTTP ${response.status}`);
  const { roleCredentials } = (await response.json()) as { roleCredentials: RoleCredentials };
  return roleCredentials;
}

async function sessionWorks(credentials: RoleCredentials): Promise<boolean> {
  const iam = new IAMClient({ region: env.region, credentials, maxAttempts: 1 });
  try {
    await iam.send(new ListAccountAliasesCommand({}));
    return true;
  } catch (error) {
    if ((error as Error).name === 'AccessDenied' || (error as Error).name === 'AccessDeniedException') return false;
    throw error;
  }
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + PROPAGATION_MS;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} did not happen within ${PROPAGATION_MS / 60_000} minutes`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
}

describe.skipIf(!configured)('aws-identity-center against a real IAM Identity Center', () => {
  it('assigns, proves the user gets working credentials, revokes, and proves they stop', async () => {
    const target: TargetConfig = {
      name: 'aws-live',
      connector: 'aws-identity-center',
      description: '',
      settings: { region: env.region, instanceArn: env.instanceArn, identityStoreId: env.identityStoreId, revokeSessions: true },
      labels: {},
      entitlements: new Map([
        ['live', { name: 'live', target: 'aws-live', description: '', settings: { permissionSet: env.permissionSet, accounts: [env.account] }, labels: {} }],
      ]),
    };
    const connector = new AwsIdentityCenterConnector();
    expect(connector.validateSettings(target)).toEqual([]);
    await connector.checkTarget(target, AbortSignal.timeout(60_000));
    const grant = {
      grantId: newId('grant'),
      principalId: env.userName!,
      target,
      entitlement: target.entitlements.get('live')!,
      durationMs: 900_000,
      notAfter: new Date(Date.now() + 900_000),
      parameters: {},
    };
    const { handle } = await connector.provision(grant, AbortSignal.timeout(300_000));
    const listed = await connector.listAccess(target, AbortSignal.timeout(60_000));
    expect(listed).toContainEqual(expect.objectContaining({ principalId: env.userName, entitlement: 'live' }));

    // The portal names roles by permission set name.
    const roleName = await (async () => {
      const { DescribePermissionSetCommand, SSOAdminClient } = await import('@aws-sdk/client-sso-admin');
      const sso = new SSOAdminClient({ region: env.region });
      return (await sso.send(new DescribePermissionSetCommand({ InstanceArn: env.instanceArn, PermissionSetArn: env.permissionSet }))).PermissionSet!.Name!;
    })();
    let issued: RoleCredentials | null = null;
    await eventually('the portal issuing role credentials', async () => (issued = await portalCredentials(roleName)) !== null);
    const me = await new STSClient({ region: env.region, credentials: issued! }).send(new GetCallerIdentityCommand({}));
    expect(me.Account).toBe(env.account);
    expect(await sessionWorks(issued!)).toBe(true);

    for (let result = await connector.revoke(grant, handle, AbortSignal.timeout(300_000)); result?.propagationPending;) {
      await new Promise((r) => setTimeout(r, result?.recheckInMs ?? 5_000));
      result = await connector.revoke(grant, handle, AbortSignal.timeout(300_000));
    }
    await eventually('the portal refusing new credentials', async () => (await portalCredentials(roleName)) === null);
    await eventually('the session issued before the revoke being denied', async () => !(await sessionWorks(issued!)));
  });
});

describe.skipIf(configured)('aws-identity-center live smoke test', () => {
  it(`is skipped: set ${NEEDED} to run it against a real IAM Identity Center`, () => {});
});
