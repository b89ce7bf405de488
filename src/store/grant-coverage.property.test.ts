import fc from 'fast-check';
import { expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { grantCovers, type Grant, type GrantStatus } from '../domain/grant.js';
import { newId } from '../domain/ids.js';
import { decideRequest } from '../domain/request.js';
import { databaseNow } from './database.js';
import { findGrantInForce, insertGrant } from './grants.js';
import { insertRequest } from './requests.js';

/**
 * NB. domain/grant.ts `grantCovers` is the one definition of "this grant gives access now"; the
 * access check runs it as SQL (findGrantInForce). This proves the two agree on both backends.
 * Expiries are kept at least 10 s away from the database clock, so the instant between reading
 * the clock and running the query cannot decide the outcome (the exact boundary, expiresAt + 0,
 * is in domain/lifecycle.test.ts and the engine tests).
 */
const STATUSES: readonly GrantStatus[] = ['provisioning', 'active', 'revoking', 'revoked', 'failed'];
const offsetArb = fc.oneof(fc.integer({ min: 10_000, max: 86_400_000 }), fc.integer({ min: -86_400_000, max: -10_000 }));
// The schema holds an active grant to having an expiry (CHECK in migration 0001): only other states may lack one.
const grantArb = fc
  .record({ status: fc.constantFrom(...STATUSES), expiresInMs: fc.option(offsetArb, { nil: null }) })
  .filter((spec) => spec.status !== 'active' || spec.expiresInMs !== null);

function requestFor(principalId: string) {
  return decideRequest(
    {
      id: newId('request'),
      kind: 'access',
      principal: { id: principalId, kind: 'user', groups: [] },
      target: 'prod-db',
      entitlement: 'readonly',
      reason: 'property test',
      ticket: null,
      parameters: {},
      grantId: null,
    },
    { outcome: 'approved', policy: 'p', policyVersion: 'v1', reasons: ['matched p'], stages: [], durationMs: 3_600_000, pendingTimeoutMs: 86_400_000 },
    new Date('2026-01-01T00:00:00Z'),
  );
}

describeEachStore('the access check agrees with grantCovers', ({ store }) => {
  it('finds a grant in force exactly when grantCovers says one covers, and the one lasting longest', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(grantArb, { minLength: 0, maxLength: 4 }), async (specs) => {
        const db = store().db;
        const principalId = `prop-${newId('user')}`;
        const now = await databaseNow(db);
        const grants: Grant[] = [];
        for (const [i, spec] of specs.entries()) {
          const request = requestFor(principalId);
          await insertRequest(db, request, {});
          const grant: Grant = {
            id: newId('grant'),
            requestId: request.id,
            principalId,
            target: 'prod-db',
            entitlement: 'readonly',
            status: spec.status,
            durationMs: 3_600_000,
            breakGlass: false,
            parameters: {},
            activatedAt: spec.expiresInMs === null ? null : now,
            expiresAt: spec.expiresInMs === null ? null : new Date(now.getTime() + spec.expiresInMs),
            endReason: null,
            endedBy: null,
            endedAt: null,
            extensions: 0,
          };
          await insertGrant(db, grant, `${principalId}:${i}`, now);
          grants.push(grant);
        }
        const covering = grants.filter((g) => grantCovers(g, now)).sort((a, b) => b.expiresAt!.getTime() - a.expiresAt!.getTime());
        const found = await findGrantInForce(db, principalId, 'prod-db', 'readonly');
        const latest = covering[0]?.expiresAt!.getTime();
        expect(found?.expiresAt.getTime()).toBe(latest);
        // Ties on the expiry may come back in either order; any of them is right.
        if (found) expect(covering.filter((g) => g.expiresAt!.getTime() === latest).map((g) => g.id)).toContain(found.id);
      }),
      { numRuns: 40 },
    );
  });
});
