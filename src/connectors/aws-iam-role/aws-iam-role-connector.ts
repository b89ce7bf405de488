import { UpdateAssumeRolePolicyCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, ProvisionResult, RevokeResult } from '../types.js';
import {
  CHAINED_SESSION_MS,
  GRANT_TAG,
  REVOCATION_POLICY,
  denies,
  liveBackstops,
  parseDocument,
  revokeGrant,
  setBackstop,
  type RevocationDocument,
} from './revocation-policy.js';
import { RevocationWriter, type Edit } from './revocation-writer.js';
import { PolicyTooLarge, RolePolicies, awsFailure, clientsFor, type RoleClients } from './role-api.js';
import { requesterCredentials, sessionName, sessionSeconds, sourceIdentity } from './sessions.js';
import { isRoleArn, parseEntitlement, parseTarget, targetProblems, type RoleEntitlement } from './settings.js';
import { coversLapse, isLapse, trustedPrincipals, withoutPrincipal } from './trust-policy.js';

/**
 * Short-lived STS credentials for an IAM role (docs/connectors/aws-iam-role.md).
 *
 * Provision calls AssumeRole with the requester as source identity and the grant id as the
 * transitive session tag `lapse-grant`, for as long as the grant has left (within the role's
 * MaxSessionDuration, at least AWS's 900 s), and writes the grant's backstop into the role's
 * `lapse-revocations` inline policy: a deny of the grant's sessions from its end on. STS sessions
 * cannot be ended, only denied: revoke turns the backstop into an immediate deny that lasts until
 * the grant's last session has expired, then reads the policy back (IAM is eventually consistent).
 */
export class AwsIamRoleConnector implements Connector {
  readonly type = 'aws-iam-role';
  /** One per connector: the queue that serialises changes to each role's policy. */
  readonly writer = new RevocationWriter();

  validateSettings(target: TargetConfig): string[] {
    return targetProblems(target);
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(target);
    const clients = clientsFor(target, settings);
    const call = caller(target, signal);
    await call('GetCallerIdentity (Lapse’s own credentials)', () => clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: signal }));
    for (const role of distinctRoles(target)) {
      const policies = new RolePolicies(clients.iam, role.roleName, signal);
      await call(`GetRole ${role.roleName}`, () => policies.role());
      // NB. AssumeRole has no dry run: a real 15-minute session, tagged and with a source identity,
      // is the only proof that the trust policy allows all three actions. Its keys are dropped here.
      await call(`AssumeRole ${role.roleArn} with a session tag and a source identity`, () =>
        clients.sts.send(
          new AssumeRoleCommand({
            RoleArn: role.roleArn,
            RoleSessionName: 'lapse-check',
            DurationSeconds: 900,
            SourceIdentity: 'lapse-check',
            Tags: [{ Key: GRANT_TAG, Value: 'lapse-check' }],
            TransitiveTagKeys: [GRANT_TAG],
            ExternalId: role.externalId,
          }),
          { abortSignal: signal },
        ),
      );
      await call(`GetRolePolicy ${role.roleName}/${REVOCATION_POLICY}`, () => policies.get(REVOCATION_POLICY));
      await call(`ListRolePolicies ${role.roleName}`, () => policies.othersSize(REVOCATION_POLICY));
      // A probe policy that never matches proves PutRolePolicy, DeleteRolePolicy and room in the budget.
      const probe = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'LapseCheckProbe', Effect: 'Deny', Action: '*', Resource: '*', Condition: { DateLessThan: { 'aws:CurrentTime': '2000-01-01T00:00:00Z' } } },
        ],
      });
      await call(`PutRolePolicy ${role.roleName}/lapse-check-probe`, () => policies.put('lapse-check-probe', probe));
      await call(`DeleteRolePolicy ${role.roleName}/lapse-check-probe`, () => policies.delete('lapse-check-probe'));
    }
  }

  /** Every grant has its own sessions, so revoke always runs. */
  accessKey(grant: GrantSpec): string {
    return `${grant.target.name}/${grant.grantId}`;
  }

  provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    return this.issue(grant, signal);
  }

  /** Fresh credentials up to the new end, and the backstop moved there. */
  async extend(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<Pick<ProvisionResult, 'credentials'>> {
    const { credentials } = await this.issue(grant, signal);
    return { credentials: credentials! };
  }

  /** The grant became active: its backstop moves to the grant's actual end. Sessions keep their expiry (STS cannot change it). */
  async settleExpiry(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    const { role, clients } = this.resolve(grant.target, grant.entitlement.name);
    const cut = grant.notAfter.getTime();
    await this.change(grant.target, clients, role, grant.grantId, signal, (doc) => {
      const backstop = doc.backstops.get(grant.grantId);
      if (backstop) setBackstop(doc, { ...backstop, cut, until: Math.max(backstop.until, cut + CHAINED_SESSION_MS) });
      return undefined;
    });
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<RevokeResult | void> {
    const resolved = this.resolve(grant.target, grant.entitlement.name);
    const { clients } = resolved;
    // The role the sessions were issued for, even if the entitlement has been pointed at another since.
    const role = isRoleArn(handle?.roleArn) ? parseEntitlement({ ...grant.entitlement, settings: { roleArn: handle.roleArn } }) : resolved.role;
    // Without a backstop to read the bound from: sessions issued at provision end by the handle's
    // expiry, those issued by extend by the grant's end + 900 s (AWS's shortest session), plus an
    // hour for sessions chained from them. The provision-time end may run 60 s past the grant's.
    const issuedUntil = Math.max(
      typeof handle?.sessionExpiresAt === 'string' ? Date.parse(handle.sessionExpiresAt) || 0 : 0,
      grant.notAfter.getTime() + 960_000,
    );
    const confirmed = await this.deny(grant.target, clients, role, grant.grantId, issuedUntil + CHAINED_SESSION_MS, signal);
    if (confirmed) return;
    return {
      propagationPending: `IAM does not show the deny for grant ${grant.grantId} in the ${REVOCATION_POLICY} policy of role ${role.roleName} yet (IAM is eventually consistent); Lapse reads it back again`,
      recheckInMs: 2_000,
    };
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = parseTarget(target);
    const clients = clientsFor(target, settings);
    const call = caller(target, signal);
    const me = (await call('GetCallerIdentity', () => clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: signal }))).Arn ?? '';
    const found: CurrentAccess[] = [];
    for (const role of distinctRoles(target)) {
      const entitlements = [...target.entitlements.values()].filter((e) => parseEntitlement(e).roleArn === role.roleArn).map((e) => e.name);
      const policies = new RolePolicies(clients.iam, role.roleName, signal);
      const doc = await call(`GetRolePolicy ${role.roleName}/${REVOCATION_POLICY}`, async () => readRevocations(await policies.get(REVOCATION_POLICY), role));
      const partition = role.roleArn.split(':')[1];
      for (const backstop of liveBackstops(doc, Date.now())) {
        const account = `arn:${partition}:sts::${role.account}:assumed-role/${role.roleName}/${sessionName({ grantId: backstop.grantId, principalId: backstop.principal })}`;
        for (const entitlement of entitlements) found.push({ account, principalId: backstop.principal, entitlement, grantId: backstop.grantId });
      }
      const trust = await call(`GetRole ${role.roleName}`, async () => trustPolicy(await policies.role()));
      for (const principal of trustedPrincipals(trust)) {
        if (isLapse(principal.value, me)) continue;
        for (const entitlement of entitlements) found.push({ account: principal.value, principalId: principal.value, entitlement, grantId: null });
      }
    }
    return found;
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const { role, clients } = this.resolve(target, access.entitlement);
    if (access.grantId !== null) {
      // A grant's sessions: denied at once (the bound comes from its backstop; without one, AWS's longest session).
      await this.deny(target, clients, role, access.grantId, Date.now() + 43_200_000 + CHAINED_SESSION_MS, signal);
      return;
    }
    const call = caller(target, signal);
    const me = (await call('GetCallerIdentity', () => clients.sts.send(new GetCallerIdentityCommand({}), { abortSignal: signal }))).Arn ?? '';
    const policies = new RolePolicies(clients.iam, role.roleName, signal);
    const trust = await call(`GetRole ${role.roleName}`, async () => trustPolicy(await policies.role()));
    const principals = trustedPrincipals(trust);
    if (!principals.some((p) => p.value === access.account)) return;
    const lapseNamed = principals.some((p) => isLapse(p.value, me));
    const next = withoutPrincipal(trust, access.account);
    if (isLapse(access.account, me) || (coversLapse(access.account, me) && !lapseNamed) || next === undefined) {
      throw new LapseError(
        'conflict',
        `aws-iam-role target ${target.name}: will not remove "${access.account}" from the trust policy of role ${role.roleName}: Lapse assumes the role through it`,
        {
          where: role.roleArn,
          hint: `name Lapse's own role or user (${me}) in the trust policy, then remove "${access.account}"`,
        },
      );
    }
    await call(`UpdateAssumeRolePolicy ${role.roleName}`, () =>
      clients.iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: role.roleName, PolicyDocument: JSON.stringify(next) }), { abortSignal: signal }),
    );
  }

  private resolve(target: TargetConfig, entitlementName: string): { role: RoleEntitlement; clients: RoleClients } {
    const settings = parseTarget(target);
    const entitlement = target.entitlements.get(entitlementName);
    if (!entitlement) {
      throw new LapseError('not_found', `aws-iam-role target ${target.name} has no entitlement ${entitlementName}`, {
        where: `targets.${target.name}.entitlements`,
      });
    }
    return { role: parseEntitlement(entitlement), clients: clientsFor(target, settings) };
  }

  private async issue(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const { role, clients } = this.resolve(grant.target, grant.entitlement.name);
    const identity = sourceIdentity(grant);
    const name = sessionName(grant);
    const call = caller(grant.target, signal);
    const found = await call(`GetRole ${role.roleName}`, () => new RolePolicies(clients.iam, role.roleName, signal).role());
    const seconds = sessionSeconds(grant.notAfter, Date.now(), found.MaxSessionDuration ?? 3600, role.maxSessionSeconds);
    const assumed = await call(`AssumeRole ${role.roleArn}`, () =>
      clients.sts.send(
        new AssumeRoleCommand({
          RoleArn: role.roleArn,
          RoleSessionName: name,
          DurationSeconds: seconds,
          SourceIdentity: identity,
          Tags: [{ Key: GRANT_TAG, Value: grant.grantId }],
          // Sessions chained from this one keep the tag, so the same deny reaches them.
          TransitiveTagKeys: [GRANT_TAG],
          ExternalId: role.externalId,
          Policy: role.sessionPolicy,
        }),
        { abortSignal: signal },
      ),
    );
    const credentials = requesterCredentials(assumed.Credentials ?? {}, parseTarget(grant.target).region, role.roleArn, `lapse-${grant.grantId}`);
    const expiresAt = Date.parse(credentials.Expiration!);
    const cut = grant.notAfter.getTime();
    const outcome = await this.change(grant.target, clients, role, grant.grantId, signal, (doc) => {
      setBackstop(doc, { grantId: grant.grantId, principal: identity, cut, until: Math.max(expiresAt, cut + CHAINED_SESSION_MS) });
      return undefined;
    });
    return { handle: { roleArn: role.roleArn, sessionName: name, sessionExpiresAt: credentials.Expiration!, backstop: outcome.backstop }, credentials };
  }

  /** Denies the grant's sessions now; true when the read-back shows it. */
  private async deny(
    target: TargetConfig,
    clients: RoleClients,
    role: RoleEntitlement,
    grantId: string,
    fallbackUntil: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const since = Date.now();
    const outcome = await this.change(target, clients, role, grantId, signal, (doc, now) => {
      const until = revokeGrant(doc, grantId, fallbackUntil, now);
      return until === undefined ? undefined : (readBack: RevocationDocument, at: number) => denies(readBack, grantId, since, until, at);
    });
    return outcome.confirmed;
  }

  private async change(target: TargetConfig, clients: RoleClients, role: RoleEntitlement, grantId: string, signal: AbortSignal, edit: Edit) {
    return caller(target, signal)(`updating the ${REVOCATION_POLICY} policy of role ${role.roleName}`, () =>
      this.writer.change(`${target.name}\u0000${role.roleArn}`, clients.iam, role.roleName, grantId, edit, signal),
    );
  }
}

/** Runs one AWS call, turning its failure into a LapseError that says what failed and how to fix it. */
function caller(target: TargetConfig, signal: AbortSignal) {
  return async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    if (signal.aborted) throw awsFailure(target, what, new Error('aborted'), signal);
    try {
      return await work();
    } catch (error) {
      if (error instanceof PolicyTooLarge) {
        throw new LapseError('connector_failed', `aws-iam-role target ${target.name}: ${what} failed: ${error.message}`, {
          where: `targets.${target.name}`,
          hint: 'IAM allows 10,240 characters of inline policies per role; move the role’s own inline policies to managed policies',
        });
      }
      throw awsFailure(target, what, error, signal);
    }
  };
}

function distinctRoles(target: TargetConfig): RoleEntitlement[] {
  const roles = new Map<string, RoleEntitlement>();
  for (const entitlement of target.entitlements.values()) {
    const role = parseEntitlement(entitlement);
    if (!roles.has(role.roleArn)) roles.set(role.roleArn, role);
  }
  return [...roles.values()];
}

function readRevocations(text: string | undefined, role: RoleEntitlement): RevocationDocument {
  try {
    return parseDocument(text);
  } catch {
    throw new LapseError('connector_failed', `role ${role.roleName}: its ${REVOCATION_POLICY} inline policy is not JSON Lapse can read`, {
      where: role.roleArn,
    });
  }
}

function trustPolicy(role: { AssumeRolePolicyDocument?: string }): Record<string, unknown> {
  return JSON.parse(decodeURIComponent(role.AssumeRolePolicyDocument ?? '{}')) as Record<string, unknown>;
}
