import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, ProvisionResult, RevokeResult } from '../types.js';
import { GcpCredentials, type TokenSource } from './credentials.js';
import {
  grantBinding,
  grantIdOf,
  MAX_PRINCIPALS,
  moveGrantExpiry,
  origin,
  principalCount,
  purgeExpired,
  removeGrantBindings,
  removeStandingMember,
  upsertGrantBinding,
  type Binding,
} from './iam-policy.js';
import { memberOf, principalsOf } from './members.js';
import { PolicyWriter, type Mutation } from './policy-writer.js';
import { ADMIN_ROLE, kindOf, permissionsFor, ResourceManager } from './resource-manager.js';
import { parseEntitlement, parseTarget, resourceProblem, targetProblems, type GcpTarget } from './settings.js';

export interface GcpIamConnectorOptions {
  /** Tests and benchmarks only: where bearer tokens come from instead of the key or ADC (see credentials.ts). */
  readonly tokenSource?: TokenSource;
}

/** How soon revoke is asked again when the policy read-back still shows a removed binding. */
const PROPAGATION_RECHECK_MS = 10_000;

/**
 * Google Cloud IAM: a conditional role binding per grant in the IAM policy (version 3) of a
 * project, folder or organization. The condition `request.time < timestamp("<end>")` ends the
 * access at the grant's end even without Lapse; its title `lapse:<grant id>` names the grant, so
 * revoke, extension and reconciliation find exactly that binding. Every change is a read-modify-
 * write on the policy's etag, batched per resource (policy-writer.ts).
 */
export class GcpIamConnector implements Connector {
  readonly type = 'gcp-iam';
  private readonly credentials: GcpCredentials;
  private readonly writer = new PolicyWriter();

  constructor(options: GcpIamConnectorOptions = {}) {
    this.credentials = new GcpCredentials(options.tokenSource);
  }

  validateSettings(target: TargetConfig): string[] {
    return targetProblems(target);
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(target);
    const api = this.api(target, settings);
    const resources = new Set([...target.entitlements.values()].map((e) => parseEntitlement(target, e).resource));
    for (const resource of resources) {
      const wanted = permissionsFor(resource);
      const held = new Set(await api.testPermissions(resource, wanted, signal));
      const missing = wanted.filter((p) => !held.has(p));
      if (missing.length > 0) {
        throw new LapseError('connector_failed', `gcp-iam target ${target.name}: Lapse's identity lacks ${missing.join(' and ')} on ${resource}`, {
          where: `targets.${target.name}`,
          missing,
          hint: `grant it ${ADMIN_ROLE[kindOf(resource)]} on ${resource}, or a custom role with ${wanted.join(' and ')} (docs/connectors/gcp-iam.md); if the ${kindOf(resource).slice(0, -1)} does not exist, fix the resource`,
        });
      }
    }
  }

  /** Each grant is its own binding (its own condition), so no two grants share one. */
  accessKey(grant: GrantSpec): string {
    return `${grant.target.name}/${grant.grantId}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const settings = parseTarget(grant.target);
    const { role, resource } = parseEntitlement(grant.target, grant.entitlement);
    const member = memberOf(settings, grant.target.name, grant.principalId);
    const binding = grantBinding({
      grantId: grant.grantId,
      target: grant.target.name,
      entitlement: grant.entitlement.name,
      role,
      member,
      notAfter: grant.notAfter,
    });
    await this.change(grant.target, settings, resource, signal, (bindings) => {
      upsertGrantBinding(bindings, binding);
      const count = principalCount(bindings);
      if (count > MAX_PRINCIPALS) {
        throw new LapseError(
          'connector_failed',
          `gcp-iam target ${grant.target.name}: the IAM policy of ${resource} would hold ${count} principals, over IAM's limit of ${MAX_PRINCIPALS}`,
          {
            where: `targets.${grant.target.name}.entitlements.${grant.entitlement.name}.settings.resource`,
            hint: 'grant through groups, remove unused bindings, or spread entitlements over folders or projects',
          },
        );
      }
    });
    return { handle: { resource, role, member } };
  }

  async settleExpiry(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    await this.moveExpiry(grant, handle, signal);
  }

  async extend(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    await this.moveExpiry(grant, handle, signal);
  }

  /**
   * Moves the grant's backstop. It never re-creates a missing binding: a revoke may have removed it
   * while this call was on its way, and re-adding would hand back access that was taken away.
   */
  private async moveExpiry(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(grant.target);
    const resource = resourceOf(grant, handle);
    await this.change(grant.target, settings, resource, signal, (bindings) => {
      if (!moveGrantExpiry(bindings, grant.grantId, grant.notAfter)) {
        throw new LapseError(
          'connector_failed',
          `gcp-iam target ${grant.target.name}: the IAM policy of ${resource} has no binding for grant ${grant.grantId} to extend`,
          {
            where: `grants.${grant.grantId}`,
            hint: 'it was removed outside Lapse (or has already expired); the holder has no access now: revoke the grant and request again',
          },
        );
      }
    });
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<RevokeResult | void> {
    const settings = parseTarget(grant.target);
    const resource = resourceOf(grant, handle);
    const { readBack } = await this.change(grant.target, settings, resource, signal, (bindings) => void removeGrantBindings(bindings, grant.grantId), true);
    if (readBack?.some((b) => grantIdOf(b) === grant.grantId)) {
      return {
        propagationPending: `the IAM policy of ${resource} accepted the removal of grant ${grant.grantId}'s binding, but reading it back still shows the binding (IAM reads are eventually consistent)`,
        recheckInMs: PROPAGATION_RECHECK_MS,
      };
    }
  }

  /**
   * Lapse bindings of this target (with their grant) and every other member holding an
   * entitlement's role on its resource (standing access, no grant). Expired Lapse bindings are
   * purged on the way: they grant nothing but count toward IAM's principal limit.
   */
  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = parseTarget(target);
    const api = this.api(target, settings);
    const self = (await this.credentials.for(target, settings)).self;
    const principalOf = principalsOf(settings);
    const entitlements = [...target.entitlements.values()].map((e) => ({ name: e.name, ...parseEntitlement(target, e) }));
    const found: CurrentAccess[] = [];
    for (const resource of new Set(entitlements.map((e) => e.resource))) {
      const bindings = (await api.getPolicy(resource, signal)).bindings ?? [];
      if (purgeExpired([...bindings], new Date()) > 0) await this.change(target, settings, resource, signal, () => undefined);
      const live = [...bindings];
      purgeExpired(live, new Date());
      for (const binding of live) {
        const grantId = grantIdOf(binding);
        const members = binding.members ?? [];
        if (grantId !== null) {
          const from = origin(binding);
          const entitlement = from ? (from.target === target.name ? from.entitlement : null) : entitlementFor(entitlements, resource, binding)?.name;
          if (entitlement) for (const member of members) found.push({ account: member, principalId: principalOf(member), entitlement, grantId });
          continue;
        }
        for (const e of entitlements.filter((e) => e.resource === resource && e.role === binding.role)) {
          for (const member of members.filter((m) => m !== self))
            found.push({ account: member, principalId: principalOf(member), entitlement: e.name, grantId: null });
        }
      }
    }
    return dedupe(found);
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(target);
    const config = target.entitlements.get(access.entitlement);
    if (!config)
      throw new LapseError('not_found', `gcp-iam target ${target.name} has no entitlement ${access.entitlement}`, {
        where: `targets.${target.name}.entitlements`,
      });
    const { role, resource } = parseEntitlement(target, config);
    const grantId = access.grantId;
    const mutate: Mutation =
      grantId !== null ? (bindings) => void removeGrantBindings(bindings, grantId) : (bindings) => void removeStandingMember(bindings, role, access.account);
    await this.change(target, settings, resource, signal, mutate);
  }

  private api(target: TargetConfig, settings: GcpTarget): ResourceManager {
    return new ResourceManager(target.name, () => this.credentials.for(target, settings), settings.rootUrl, settings.timeoutMs);
  }

  private change(target: TargetConfig, settings: GcpTarget, resource: string, signal: AbortSignal, mutate: Mutation, readBack = false) {
    // NB. Keyed by target as well: two targets may reach one resource as different identities.
    return this.writer.change(`${target.name}\0${settings.rootUrl}\0${resource}`, this.api(target, settings), resource, mutate, { signal, readBack });
  }
}

/** Where the grant's binding is: the handle's resource (the entitlement may have moved since), else the entitlement's. */
function resourceOf(grant: GrantSpec, handle: AccessHandle | null): string {
  if (handle?.resource === undefined) return parseEntitlement(grant.target, grant.entitlement).resource;
  const problem = resourceProblem(handle.resource, `grants.${grant.grantId}.handle.resource`);
  if (problem) throw new LapseError('connector_failed', `gcp-iam target ${grant.target.name}: ${problem}`, { where: `grants.${grant.grantId}.handle` });
  return handle.resource as string;
}

function entitlementFor(entitlements: { name: string; role: string; resource: string }[], resource: string, binding: Binding) {
  return entitlements.find((e) => e.resource === resource && e.role === binding.role);
}

function dedupe(entries: CurrentAccess[]): CurrentAccess[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const key = `${e.account}\0${e.entitlement}\0${e.grantId ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
