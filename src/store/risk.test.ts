import { expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { observeRequest } from '../domain/risk.js';
import { readRiskHistory, recordRiskObservation, type RiskQuestion } from './risk.js';

describeEachStore('risk baselines', ({ store }) => {
  it('keeps the person, entitlement, peer group and client attributes incrementally, and reads them back by key', async () => {
    const db = store().db;
    const now = new Date('2026-03-02T10:00:00Z');
    const ask = (principalId: string, entitlement: string, network: string): RiskQuestion => ({
      principalId,
      groups: ['dba', 'everyone'],
      target: 'db',
      entitlement,
      seen: { network },
    });
    for (let i = 0; i < 6; i++) {
      const q = ask(`p${i}`, 'ro', `10.0.${i}.0/24`);
      const history = await readRiskHistory(db, q, { lock: false });
      await recordRiskObservation(db, q, observeRequest(history.person, { durationMs: 3_600_000, now }), now);
    }
    const again = ask('p0', 'ro', '10.0.0.0/24');
    await recordRiskObservation(db, again, observeRequest((await readRiskHistory(db, again)).person, { durationMs: 3_600_000, now }), now);

    expect(await readRiskHistory(db, ask('p0', 'ro', '10.0.0.0/24'))).toMatchObject({
      person: { requests: 2 },
      targetRequests: 2,
      peers: { users: 6, usedTarget: 6 },
      seen: { network: true },
    });
    expect(await readRiskHistory(db, ask('p0', 'admin', '192.0.2.0/24'))).toMatchObject({
      targetRequests: 0,
      peers: { users: 6, usedTarget: 0 },
      seen: { network: false },
    });
    // Nobody seen yet: no history, and "new network" is not judged.
    expect(await readRiskHistory(db, { ...ask('stranger', 'ro', '10.9.9.0/24'), groups: [] })).toEqual({
      person: undefined,
      targetRequests: 0,
      peers: undefined,
      seen: {},
    });
  });
});
