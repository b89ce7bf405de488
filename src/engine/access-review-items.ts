import type { EffectiveConfig } from '../config/types.js';
import { inReviewScope, isHighRisk, reviewersOf, type ReviewCampaignSettings } from '../domain/access-review.js';
import { newId } from '../domain/ids.js';
import { matchesEntitlementPattern } from '../domain/policy/index.js';
import { enabledPeople, entitlementUse, listFindings, requestEvidence, type EntitlementUse, type Executor, type NewReviewItem } from '../store/index.js';

/**
 * What a campaign reviews (docs/reviews.md), gathered when it opens: who *may* request each
 * entitlement (policy subjects resolved to people now), who *used* it in the period (grants,
 * break-glass) while no longer eligible, and standing access reconciliation found. Each item
 * carries its evidence: last use, count, reasons, approvers.
 */

/** Items one campaign may hold; a scope that resolves to more is refused (narrow the scope). */
export const MAX_ITEMS = 20_000;

interface Eligibility {
  readonly policy: string;
  readonly viaUser: boolean;
  readonly viaGroups: string[];
}

const key = (principal: string, target: string, entitlement: string) => `${principal}\u0000${target}\u0000${entitlement}`;

/** Who may request which configured entitlement now, under the policies in scope. */
function eligiblePeople(
  config: EffectiveConfig,
  settings: ReviewCampaignSettings,
  people: readonly { name: string; groups: string[] }[],
): Map<string, Eligibility> {
  const eligible = new Map<string, Eligibility>();
  const entitlements = [...config.targets.values()].flatMap((t) => [...t.entitlements.keys()].map((e) => ({ target: t.name, entitlement: e })));
  for (const { definition } of config.policies.policies) {
    if (settings.scope.policies.length > 0 && !settings.scope.policies.includes(definition.name)) continue;
    const covered = entitlements.filter(
      (e) => inReviewScope(settings, e.target, e.entitlement) && definition.entitlements.some((p) => matchesEntitlementPattern(p, e.target, e.entitlement)),
    );
    if (covered.length === 0) continue;
    const members = new Map<string, Eligibility>();
    for (const user of definition.subjects.users) members.set(user, { policy: definition.name, viaUser: true, viaGroups: [] });
    for (const person of people) {
      const via = person.groups.filter((g) => definition.subjects.groups.includes(g));
      if (via.length === 0) continue;
      const known = members.get(person.name);
      members.set(person.name, { policy: definition.name, viaUser: known?.viaUser ?? false, viaGroups: via });
    }
    for (const [principal, how] of members) {
      for (const e of covered) {
        const k = key(principal, e.target, e.entitlement);
        if (!eligible.has(k)) eligible.set(k, how);
      }
    }
  }
  return eligible;
}

function usageEvidence(use: EntitlementUse | undefined, requests: Map<string, { reason: string; approvers: string[] }>): Record<string, unknown> {
  if (!use) return { uses: 0, breakGlassUses: 0, lastUse: null, reasons: [], approvers: [] };
  const evidence = use.requestIds.map((id) => requests.get(id)).filter((e) => e !== undefined);
  return {
    uses: use.count,
    breakGlassUses: use.breakGlass,
    lastUse: use.lastUse.toISOString(),
    reasons: [...new Set(evidence.map((e) => e.reason.slice(0, 200)))].slice(0, 5),
    approvers: [...new Set(evidence.flatMap((e) => e.approvers))].sort().slice(0, 20),
    requests: use.requestIds.slice(0, 10),
  };
}

/** Builds the items of a new campaign from the config and database as they are now. */
export async function gatherReviewItems(
  db: Executor,
  config: EffectiveConfig,
  settings: ReviewCampaignSettings,
  campaignId: string,
  period: { from: Date; to: Date },
): Promise<NewReviewItem[]> {
  const people = await enabledPeople(db);
  const groupsOf = new Map(people.map((p) => [p.name, p.groups]));
  const inGroups = (principal: string) => settings.scope.groups.length === 0 || (groupsOf.get(principal) ?? []).some((g) => settings.scope.groups.includes(g));
  const eligible = eligiblePeople(config, settings, people);
  const uses = (await entitlementUse(db, period.from, period.to)).filter((u) => inReviewScope(settings, u.target, u.entitlement));
  const usesByKey = new Map(uses.map((u) => [key(u.principalId, u.target, u.entitlement), u]));
  const requests = await requestEvidence(
    db,
    uses.flatMap((u) => u.requestIds),
  );
  const items: NewReviewItem[] = [];
  const item = (
    kind: NewReviewItem['kind'],
    principalId: string,
    target: string,
    entitlement: string,
    extra: Partial<NewReviewItem>,
    evidence: Record<string, unknown>,
  ) =>
    items.push({
      id: newId('reviewItem'),
      campaignId,
      kind,
      principalId,
      target,
      entitlement,
      policy: null,
      findingId: null,
      highRisk: isHighRisk(settings, target, entitlement),
      reviewers: reviewersOf(settings, target, entitlement),
      evidence,
      ...extra,
    });

  for (const [k, how] of eligible) {
    const [principal = '', target = '', entitlement = ''] = k.split('\u0000');
    if (!inGroups(principal)) continue;
    item(
      'eligible',
      principal,
      target,
      entitlement,
      { policy: how.policy },
      {
        eligibleVia: { policy: how.policy, user: how.viaUser, groups: how.viaGroups },
        ...usageEvidence(usesByKey.get(k), requests),
      },
    );
  }
  for (const use of uses) {
    const k = key(use.principalId, use.target, use.entitlement);
    if (eligible.has(k) || !inGroups(use.principalId)) continue;
    item('used', use.principalId, use.target, use.entitlement, {}, { eligibleVia: null, ...usageEvidence(use, requests) });
  }
  for (const target of config.targets.keys()) {
    const findings = await listFindings(db, { target, status: 'open', kind: 'standing', limit: 1000 });
    for (const finding of findings) {
      if (!inReviewScope(settings, finding.target, finding.entitlement)) continue;
      item(
        'standing',
        finding.principalId,
        finding.target,
        finding.entitlement,
        { findingId: finding.id },
        {
          account: finding.account,
          firstSeen: finding.firstSeenAt.toISOString(),
          lastSeen: finding.lastSeenAt.toISOString(),
          reason: finding.detail.reason ?? null,
          finding: finding.id,
        },
      );
    }
  }
  return items;
}
