import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { alice, bob, carol, root, startEngine, type TestEngine } from '../../test/support/engine.js';
import { isLapseError } from '../domain/errors.js';
import { inSubjectSet } from '../domain/principal.js';

/**
 * Random sequences of real engine operations on the real database: whatever order requests,
 * reviews, cancellations and releases come in, no grant exists without every approval stage met
 * by people other than the requester, and refused operations change nothing.
 */
const people = [
  alice,
  bob,
  carol,
  root,
  { id: 'dave', kind: 'user' as const, groups: ['sre-leads', 'sre'] },
  { id: 'erin', kind: 'user' as const, groups: ['security', 'sre'] },
];

type Step =
  | { kind: 'submit'; who: number }
  | { kind: 'review'; request: number; who: number; approve: boolean }
  | { kind: 'cancel'; request: number; who: number }
  | { kind: 'release'; request: number; who: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  // Mostly eligible requesters (alice, dave, erin), sometimes someone who is not.
  fc.record({ kind: fc.constant('submit' as const), who: fc.constantFrom(0, 4, 5, 0, 4, 5, 1, 2) }),
  // Reviews weigh most, mostly approvals, so that many runs reach a grant.
  {
    arbitrary: fc.record({
      kind: fc.constant('review' as const),
      request: fc.nat({ max: 5 }),
      who: fc.integer({ min: 0, max: people.length - 1 }),
      approve: fc.constantFrom(true, true, true, false),
    }),
    weight: 6,
  },
  fc.record({ kind: fc.constant('cancel' as const), request: fc.nat({ max: 5 }), who: fc.integer({ min: 0, max: people.length - 1 }) }),
  fc.record({ kind: fc.constant('release' as const), request: fc.nat({ max: 5 }), who: fc.integer({ min: 0, max: people.length - 1 }) }),
);

describeEachStore('lifecycle engine (property)', ({ store }) => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine(store());
  });
  afterAll(async () => {
    await t.stop();
  });

  it('never grants access without every stage approved by others, whatever the order of events', async () => {
    let granted = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 12 }), async (steps) => {
        const requests: string[] = [];
        for (const step of steps) {
          const who = people[step.who]!;
          // Steps aim at one of the three newest requests, so sequences build on each other.
          const back = (step as { request?: number }).request ?? 0;
          const id = requests.length > 0 ? requests[requests.length - 1 - (back % Math.min(3, requests.length))] : undefined;
          try {
            if (step.kind === 'submit') {
              const { request } = await t.engine.submit({
                principal: who,
                target: 'prod-db',
                entitlement: 'admin',
                reason: 'property based testing run',
                ticket: 'OPS-1',
              });
              requests.push(request.id);
            } else if (step.kind === 'review' && id) {
              await t.engine.review({ requestId: id, reviewer: who, decision: step.approve ? 'approve' : 'deny' });
            } else if (step.kind === 'cancel' && id) {
              await t.engine.cancel({ requestId: id, by: who });
            } else if (step.kind === 'release' && id) {
              const grantId = (await store().db.selectFrom('requests').select('grant_id').where('id', '=', id).executeTakeFirst())?.grant_id;
              if (grantId) await t.engine.release({ grantId, by: who });
            }
          } catch (error) {
            // Refusals are expected (not eligible, self-review, wrong stage, final state): they must be LapseErrors.
            if (!isLapseError(error)) throw error;
          }
        }
        if (requests.length === 0) return;
        const rows = await store().db.selectFrom('requests').selectAll().where('id', 'in', requests).execute();
        const reviews = await store().db.selectFrom('reviews').selectAll().where('request_id', 'in', requests).execute();
        const grants = await store().db.selectFrom('grants').selectAll().where('request_id', 'in', requests).execute();
        for (const request of rows) {
          const mine = reviews.filter((r) => r.request_id === request.id);
          expect(mine.some((r) => r.reviewer_id === request.principal_id)).toBe(false);
          const grant = grants.find((g) => g.request_id === request.id);
          if (!grant) continue;
          granted += 1;
          expect(request.status).toBe('approved');
          request.stages.forEach((stage, index) => {
            const approvers = new Set(
              mine.filter((r) => r.stage === index && r.decision === 'approve' && inSubjectSet(r.reviewer, stage.approvers)).map((r) => r.reviewer_id),
            );
            expect(approvers.size).toBeGreaterThanOrEqual(stage.quorum);
          });
          expect(mine.some((r) => r.decision === 'deny')).toBe(false);
          if (grant.end_reason === 'released') {
            expect(grant.ended_by).toBe(request.principal_id); // only the holder released it
          }
        }
      }),
      {
        numRuns: 60,
        // A known path to a grant runs first, so the invariant is never only vacuously true.
        examples: [
          [
            [
              { kind: 'submit', who: 0 },
              { kind: 'review', request: 0, who: 1, approve: true },
              { kind: 'review', request: 0, who: 2, approve: true },
              { kind: 'release', request: 0, who: 0 },
            ],
          ],
        ],
      },
    );
    expect(granted).toBeGreaterThan(0); // the property was exercised, not vacuously true
  }, 120_000);
});
