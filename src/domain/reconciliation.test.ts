import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GrantStatus } from './grant.js';
import { compareAccess, coveringGrant, type KnownGrant, type ObservedAccess } from './reconciliation.js';

const listedAt = new Date('2026-01-01T12:00:00Z');
const before = new Date(listedAt.getTime() - 60_000);
const after = new Date(listedAt.getTime() + 1_000);

function grant(id: string, principalId: string, overrides: Partial<KnownGrant> = {}): KnownGrant {
  return {
    id,
    target: 'db',
    principalId,
    entitlement: 'ro',
    accessKey: `db/ro/${principalId}`,
    status: 'active',
    activatedAt: before,
    endedAt: null,
    ...overrides,
  };
}
function entry(principalId: string, overrides: Partial<ObservedAccess> = {}): ObservedAccess {
  return { account: principalId, principalId, entitlement: 'ro', grantId: null, ...overrides };
}
const compare = (observed: ObservedAccess[], grants: KnownGrant[], entitlements = ['ro']) =>
  compareAccess({ target: 'db', observed, grants, listedAt, entitlements: new Set(entitlements) });

describe('compareAccess', () => {
  it('covers access by the grant it names, by a grant sharing its access key, or by principal and entitlement', () => {
    const ended = grant('g1', 'alice', { status: 'revoked', endedAt: before });
    const live = grant('g2', 'alice');
    const result = compare([entry('alice', { grantId: 'g1' }), entry('bob', { account: 'db_bob' })], [ended, live, grant('g3', 'bob')]);
    expect(result).toEqual({ standing: [], missing: [], covered: 2 });
  });

  it('covers access listed under another entitlement that gives the same access (same access key)', () => {
    const analyst = grant('g1', 'alice', { entitlement: 'analyst', accessKey: 'db/elevate/alice/["reader"]' });
    const result = compare(
      [
        entry('alice', { entitlement: 'analyst' }),
        entry('alice', { entitlement: 'ro', accessKey: 'db/elevate/alice/["reader"]' }),
        entry('dave', { accessKey: 'db/elevate/dave/["reader"]' }),
      ],
      [analyst],
      ['ro', 'analyst'],
    );
    expect(result.covered).toBe(2);
    expect(result.standing.map((s) => s.access.principalId)).toEqual(['dave']);
  });

  it('names standing access unmanaged, left over or claiming an unknown grant', () => {
    const result = compare(
      [entry('dave'), entry('erin', { grantId: 'g1' }), entry('fay', { grantId: 'grt_forged' })],
      [grant('g1', 'erin', { status: 'revoked', endedAt: before })],
    );
    expect(result.standing.map((s) => [s.access.principalId, s.reason, s.keep])).toEqual([
      ['dave', 'unmanaged', null],
      ['erin', 'left_over', null],
      ['fay', 'unknown_grant', null],
    ]);
  });

  it('treats a leftover ephemeral account as standing even while its principal holds a newer grant', () => {
    const old = grant('g1', 'alice', { accessKey: 'db/g1', status: 'revoked', endedAt: before });
    const current = grant('g2', 'alice', { accessKey: 'db/g2' });
    const result = compare([entry('alice', { account: 'lapse_g1', grantId: 'g1' }), entry('alice', { account: 'lapse_g2', grantId: 'g2' })], [old, current]);
    expect(result.standing.map((s) => s.access.account)).toEqual(['lapse_g1']);
    expect(result.missing).toEqual([]);
  });

  it('lets a grant that ended during the listing account for what the listing saw', () => {
    const result = compare([entry('alice')], [grant('g1', 'alice', { status: 'revoked', endedAt: after })]);
    expect(result.standing).toEqual([]);
  });

  it('reports an active grant with no listed access as missing, unless it was activated after the listing started', () => {
    const result = compare(
      [],
      [grant('g1', 'alice'), grant('g2', 'bob', { activatedAt: after }), grant('g3', 'carol', { status: 'provisioning', activatedAt: null })],
    );
    expect(result.missing.map((m) => m.grant.id)).toEqual(['g1']);
  });

  it('never marks for removal access outside the configured entitlements, or of an entitlement with an unmatched live grant', () => {
    const result = compare([entry('dave', { entitlement: 'superuser' }), entry('db_alice')], [grant('g1', 'alice')], ['ro']);
    expect(result.standing.map((s) => s.keep)).toEqual([
      'the entitlement is not configured for this target',
      'a live grant of this entitlement matches no listed access',
    ]);
    expect(result.missing.map((m) => m.grant.id)).toEqual(['g1']);
  });

  it('ignores grants of other targets', () => {
    const result = compare([entry('alice')], [grant('g1', 'alice', { target: 'other' })]);
    expect(result.standing).toHaveLength(1);
  });

  it('keeps its invariants for any listing and any grants', () => {
    const statuses: GrantStatus[] = ['provisioning', 'active', 'revoking', 'revoked', 'failed'];
    const people = ['alice', 'bob', 'carol'];
    const grantArb = fc.record({
      id: fc.constantFrom('g1', 'g2', 'g3', 'g4'),
      principalId: fc.constantFrom(...people),
      entitlement: fc.constantFrom('ro', 'rw'),
      shared: fc.boolean(),
      status: fc.constantFrom(...statuses),
      activatedEarly: fc.boolean(),
      endedLate: fc.boolean(),
    });
    const entryArb = fc.record({
      principalId: fc.constantFrom(...people, 'dave'),
      entitlement: fc.constantFrom('ro', 'rw', 'x'),
      grantId: fc.option(fc.constantFrom('g1', 'g2', 'g9'), { nil: null }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(grantArb, { selector: (g) => g.id }), fc.array(entryArb, { maxLength: 8 }), (specs, entries) => {
        const grants = specs.map((g) =>
          grant(g.id, g.principalId, {
            entitlement: g.entitlement,
            accessKey: g.shared ? `db/${g.entitlement}/${g.principalId}` : `db/${g.id}`,
            status: g.status,
            activatedAt: g.status === 'provisioning' ? null : g.activatedEarly ? before : after,
            endedAt: g.status === 'revoked' || g.status === 'failed' ? (g.endedLate ? after : before) : null,
          }),
        );
        const observed = entries.map((e) => entry(e.principalId, { entitlement: e.entitlement, grantId: e.grantId }));
        const result = compare(observed, grants, ['ro', 'rw']);
        expect(result.covered + result.standing.length).toBe(observed.length);
        for (const s of result.standing) {
          // Standing means no grant accounts for it, checked entry by entry.
          expect(coveringGrant(s.access, grants, listedAt)).toBeNull();
          if (s.access.entitlement === 'x') expect(s.keep).not.toBeNull();
        }
        for (const { grant: g } of result.missing) {
          expect(g.status).toBe('active');
          expect(observed.some((o) => o.grantId === g.id)).toBe(false);
        }
        // An entry naming a live grant is never standing.
        for (const o of observed) {
          const named = grants.find((g) => g.id === o.grantId);
          if (named && ['provisioning', 'active', 'revoking'].includes(named.status)) expect(result.standing.map((s) => s.access)).not.toContain(o);
        }
      }),
      { numRuns: 500 },
    );
  });
});
