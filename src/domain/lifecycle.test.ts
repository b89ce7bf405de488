import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activateGrant, beginRevoke, completeRevoke, extendGrant, grantCovers, type Grant } from './grant.js';
import { isLapseError } from './errors.js';
import { decideRequest, isFinal, type AccessRequest } from './request.js';
import { applyReview, type Review } from './review.js';
import type { ApprovalStage } from './policy/types.js';
import { inSubjectSet, type Principal } from './principal.js';

const PEOPLE = ['req', 'p1', 'p2', 'p3', 'p4', 'p5'];
const GROUPS = ['g1', 'g2', 'g3'];

const principalArb = fc.record({
  id: fc.constantFrom(...PEOPLE),
  kind: fc.constant('user' as const),
  groups: fc.subarray(GROUPS),
});

const stageArb: fc.Arbitrary<ApprovalStage> = fc.record({
  name: fc.constantFrom('s1', 's2', 's3'),
  approvers: fc.record({ users: fc.subarray(PEOPLE), groups: fc.subarray(GROUPS) }),
  quorum: fc.integer({ min: 1, max: 3 }),
});

function pending(stages: ApprovalStage[], requester: Principal): AccessRequest {
  return decideRequest(
    { id: 'req_1', kind: 'access', principal: requester, target: 't', entitlement: 'e', reason: 'r', ticket: null, parameters: {}, grantId: null },
    { outcome: 'pending', policy: 'p', policyVersion: 'v', reasons: [], stages, durationMs: 1000, pendingTimeoutMs: 1000 },
    new Date(0),
  );
}

describe('review state machine (property)', () => {
  it('approves only when every stage has a quorum of distinct eligible approvers who are not the requester', () => {
    fc.assert(
      fc.property(
        fc.array(stageArb, { minLength: 1, maxLength: 3 }),
        principalArb,
        fc.array(
          fc.record({ reviewer: principalArb, decision: fc.constantFrom('approve' as const, 'deny' as const), stageOffset: fc.integer({ min: -1, max: 1 }) }),
          { maxLength: 25 },
        ),
        (stages, requesterBase, events) => {
          const requester = { ...requesterBase, id: 'req' };
          let request = pending(stages, requester);
          const accepted: Review[] = [];
          for (const [i, event] of events.entries()) {
            const review: Review = {
              id: `rev_${i}`,
              requestId: request.id,
              reviewer: event.reviewer,
              decision: event.decision,
              comment: '',
              stage: request.currentStage + event.stageOffset,
              at: new Date(i),
            };
            const before = request;
            try {
              const outcome = applyReview(request, accepted, review);
              accepted.push(review);
              request = outcome.request;
            } catch (error) {
              expect(isLapseError(error)).toBe(true);
              expect(request).toEqual(before); // a refused review changes nothing
              if (isFinal(before.status)) expect(isLapseError(error, 'invalid_transition') || isLapseError(error, 'self_approval')).toBe(true);
            }
          }
          expect(accepted.every((r) => r.reviewer.id !== 'req')).toBe(true);
          const people = accepted.map((r) => r.reviewer.id);
          expect(new Set(people).size).toBe(people.length); // one person counts once
          if (request.status === 'approved') {
            stages.forEach((stage, index) => {
              const approvers = new Set(
                accepted.filter((r) => r.stage === index && r.decision === 'approve' && inSubjectSet(r.reviewer, stage.approvers)).map((r) => r.reviewer.id),
              );
              expect(approvers.size).toBeGreaterThanOrEqual(stage.quorum);
            });
            expect(accepted.some((r) => r.decision === 'deny')).toBe(false);
          }
          if (accepted.some((r) => r.decision === 'deny')) expect(request.status).toBe('denied');
        },
      ),
      { numRuns: 500 },
    );
  });
});

type GrantEvent =
  | { kind: 'activate'; at: number }
  | { kind: 'extend'; by: number }
  | { kind: 'end'; reason: 'expired' | 'released' | 'revoked'; at: number }
  | { kind: 'complete'; at: number };

const grantEventArb: fc.Arbitrary<GrantEvent> = fc.oneof(
  fc.record({ kind: fc.constant('activate' as const), at: fc.integer({ min: 0, max: 10_000 }) }),
  fc.record({ kind: fc.constant('extend' as const), by: fc.integer({ min: 1, max: 5_000 }) }),
  fc.record({
    kind: fc.constant('end' as const),
    reason: fc.constantFrom('expired' as const, 'released' as const, 'revoked' as const),
    at: fc.integer({ min: 0, max: 30_000 }),
  }),
  fc.record({ kind: fc.constant('complete' as const), at: fc.integer({ min: 0, max: 30_000 }) }),
);

describe('grant state machine (property)', () => {
  it('counts duration from activation, never expires early, never stretches break-glass, and never leaves a final state', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.boolean(), fc.array(grantEventArb, { maxLength: 20 }), (durationMs, breakGlass, events) => {
        let grant: Grant = {
          id: 'grt_1',
          requestId: 'req_1',
          principalId: 'a',
          target: 't',
          entitlement: 'e',
          status: 'provisioning',
          durationMs,
          breakGlass,
          parameters: {},
          activatedAt: null,
          expiresAt: null,
          endReason: null,
          endedBy: null,
          endedAt: null,
          extensions: 0,
        };
        let granted = durationMs;
        for (const event of events) {
          const before = grant;
          try {
            if (event.kind === 'activate') grant = activateGrant(grant, new Date(event.at));
            if (event.kind === 'extend') {
              grant = extendGrant(grant, event.by);
              granted += event.by;
            }
            if (event.kind === 'end') grant = beginRevoke(grant, event.reason, 'x', new Date(event.at));
            if (event.kind === 'complete') grant = completeRevoke(grant, new Date(event.at));
          } catch (error) {
            expect(isLapseError(error, 'invalid_transition')).toBe(true);
            expect(grant).toEqual(before);
            continue;
          }
          if (before.status === 'revoked' || before.status === 'failed') throw new Error('left a final state');
          if (grant.activatedAt) {
            expect(grant.expiresAt!.getTime()).toBe(grant.activatedAt.getTime() + granted);
            expect(grant.durationMs).toBe(granted);
          }
          if (event.kind === 'end' && event.reason === 'expired') expect(event.at).toBeGreaterThanOrEqual(before.expiresAt!.getTime());
          if (grant.status === 'failed') expect(grant.activatedAt).toBeNull();
          if (breakGlass) expect(grant.durationMs).toBe(durationMs); // capped by breakGlass.maxDuration, unapproved
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('denies access at expiresAt + 0', () => {
    const active = activateGrant(
      {
        id: 'grt_1',
        requestId: 'req_1',
        principalId: 'a',
        target: 't',
        entitlement: 'e',
        status: 'provisioning',
        durationMs: 1000,
        breakGlass: false,
        parameters: {},
        activatedAt: null,
        expiresAt: null,
        endReason: null,
        endedBy: null,
        endedAt: null,
        extensions: 0,
      },
      new Date(5000),
    );
    expect(grantCovers(active, new Date(5999))).toBe(true);
    expect(grantCovers(active, new Date(6000))).toBe(false);
  });
});
