import { describe, expect, it } from 'vitest';
import { newId } from '../../domain/ids.js';
import {
  INLINE_POLICY_BUDGET,
  denies,
  emptyDocument,
  fit,
  liveBackstops,
  parseDocument,
  prune,
  renderDocument,
  revokeGrant,
  setBackstop,
} from './revocation-policy.js';

const T0 = Date.parse('2026-12-07T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;

function roundTrip(text: string | undefined) {
  return parseDocument(text);
}

describe('the lapse-revocations policy document', () => {
  it('writes a backstop per live grant that survives a round trip through IAM', () => {
    const doc = emptyDocument();
    const grantId = newId('grant');
    setBackstop(doc, { grantId, principal: 'alice@example.com', cut: T0 + HOUR, until: T0 + 2 * HOUR });
    const text = renderDocument(doc)!;
    const parsed = JSON.parse(text) as { Statement: { Sid: string; Condition: Record<string, Record<string, unknown>> }[] };
    expect(parsed.Statement).toHaveLength(1);
    expect(parsed.Statement[0]!.Sid).toMatch(/^LapseB[A-Za-z0-9]+$/);
    expect(parsed.Statement[0]!.Condition).toEqual({
      StringEquals: { 'aws:PrincipalTag/lapse-grant': grantId, 'aws:SourceIdentity': 'alice@example.com' },
      DateGreaterThan: { 'aws:CurrentTime': '2026-12-07T13:00:00Z' },
      DateLessThan: { 'aws:CurrentTime': '2026-12-07T14:00:00Z' },
    });
    const back = roundTrip(text);
    expect(liveBackstops(back, T0)).toEqual([{ grantId, principal: 'alice@example.com', cut: T0 + HOUR, until: T0 + 2 * HOUR }]);
    expect(liveBackstops(back, T0 + HOUR)).toEqual([]);
    // A backstop that has cut in already denies the grant: a revoke at expiry needs no new statement.
    expect(denies(back, grantId, T0 + HOUR, T0 + 2 * HOUR, T0 + HOUR)).toBe(true);
    expect(denies(back, grantId, T0, T0 + 2 * HOUR, T0)).toBe(false);
  });

  it('turns a revoked grant into a compact grouped entry that denies at once, until its sessions expire', () => {
    const doc = emptyDocument();
    const grants = Array.from({ length: 3 }, () => newId('grant'));
    for (const grantId of grants) setBackstop(doc, { grantId, principal: 'bob', cut: T0 + HOUR, until: T0 + 2 * HOUR });
    expect(revokeGrant(doc, grants[0]!, T0 + 12 * HOUR, T0)).toBe(T0 + 2 * HOUR);
    expect(revokeGrant(doc, grants[1]!, T0 + 12 * HOUR, T0)).toBe(T0 + 2 * HOUR);
    const back = roundTrip(renderDocument(doc));
    expect(denies(back, grants[0]!, T0, T0 + 2 * HOUR, T0)).toBe(true);
    expect(denies(back, grants[2]!, T0, T0 + 2 * HOUR, T0)).toBe(false);
    expect(liveBackstops(back, T0).map((b) => b.grantId)).toEqual([grants[2]]);
    const statements = (JSON.parse(renderDocument(back)!) as { Statement: { Sid: string }[] }).Statement;
    expect(statements.map((s) => s.Sid)).toEqual([expect.stringMatching(/^LapseB/), 'LapseR20261207T140000Z']);
  });

  it('uses the fallback bound for a grant without a backstop, and denies nothing when its sessions are all gone', () => {
    const doc = emptyDocument();
    const grantId = newId('grant');
    expect(revokeGrant(doc, grantId, T0 + 12 * HOUR, T0)).toBe(T0 + 12 * HOUR);
    expect(revokeGrant(emptyDocument(), grantId, T0 - MIN, T0)).toBeUndefined();
    expect(denies(emptyDocument(), grantId, T0, T0 - MIN, T0)).toBe(true);
  });

  it('prunes statements whose sessions have expired, and keeps statements Lapse did not write', () => {
    const foreign = { Sid: 'SecurityTeam', Effect: 'Deny', Action: 's3:DeleteBucket', Resource: '*' };
    const doc = parseDocument(JSON.stringify({ Version: '2012-10-17', Statement: [foreign] }));
    const old = newId('grant');
    revokeGrant(doc, old, T0 + 10 * MIN, T0);
    setBackstop(doc, { grantId: newId('grant'), principal: 'carol', cut: T0 + 5 * MIN, until: T0 + 20 * MIN });
    prune(doc, T0 + 16 * MIN);
    expect(doc.revoked.size).toBe(0);
    expect(doc.backstops.size).toBe(1);
    prune(doc, T0 + 21 * MIN);
    expect(JSON.parse(renderDocument(doc)!)).toEqual({ Version: '2012-10-17', Statement: [foreign] });
    expect(renderDocument(emptyDocument())).toBeUndefined();
  });

  it('when full, folds the revoked grants into one cutoff at now and keeps every revocation in force', () => {
    const doc = emptyDocument();
    const revoked = Array.from({ length: 400 }, () => newId('grant'));
    for (const [i, grantId] of revoked.entries()) revokeGrant(doc, grantId, T0 + HOUR + i * MIN, T0);
    const live = newId('grant');
    setBackstop(doc, { grantId: live, principal: 'dave', cut: T0 + 30 * MIN, until: T0 + 2 * HOUR });
    expect(renderDocument(doc)!.length).toBeGreaterThan(INLINE_POLICY_BUDGET);
    const fitted = fit(doc, INLINE_POLICY_BUDGET, T0);
    expect(fitted).toMatchObject({ cutoff: true, droppedBackstops: [] });
    expect(fitted.text!.length).toBeLessThanOrEqual(INLINE_POLICY_BUDGET);
    const back = roundTrip(fitted.text);
    for (const grantId of revoked) expect(denies(back, grantId, T0, T0 + HOUR, T0)).toBe(true);
    expect(back.cutoff).toEqual({ issuedBefore: T0, until: T0 + HOUR + 399 * MIN });
    expect(liveBackstops(back, T0).map((b) => b.grantId)).toEqual([live]);
  });

  it('drops backstops, newest first, only when even the cutoff does not fit', () => {
    const doc = emptyDocument();
    const backstops = Array.from({ length: 40 }, (_, i) => ({ grantId: newId('grant'), principal: 'erin', cut: T0 + (i + 1) * MIN, until: T0 + 3 * HOUR }));
    for (const b of backstops) setBackstop(doc, b);
    revokeGrant(doc, newId('grant'), T0 + HOUR, T0);
    const budget = renderDocument(doc)!.length - 400;
    const fitted = fit(doc, budget, T0);
    expect(fitted.cutoff).toBe(true);
    expect(fitted.text!.length).toBeLessThanOrEqual(budget);
    expect(fitted.droppedBackstops[0]).toBe(backstops.at(-1)!.grantId);
    expect(fitted.droppedBackstops.length).toBeGreaterThan(0);
  });

  it('reads what IAM may hand back: single values as lists, and unknown Lapse-looking statements as foreign', () => {
    const grantId = newId('grant');
    const text = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'LapseR20261207T140000Z',
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { StringEquals: { 'aws:PrincipalTag/lapse-grant': [grantId] }, DateLessThan: { 'aws:CurrentTime': ['2026-12-07T14:00:00Z'] } },
        },
        { Sid: 'LapseSomethingElse', Effect: 'Allow', Action: '*', Resource: '*' },
      ],
    });
    const doc = parseDocument(text);
    expect(doc.revoked.get(grantId)).toBe(T0 + 2 * HOUR);
    expect(doc.foreign).toHaveLength(1);
  });
});
