import { expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { newId } from '../domain/ids.js';
import { claimDueJobs, msUntilNextJob, scheduleJob, scheduleJobsNow, NOTIFICATION_JOB_KINDS } from './jobs.js';
import {
  countDeliveries,
  countDeliveryAttempt,
  countDeliveryAttempts,
  deliveriesToSend,
  enabledUsersIn,
  markDeliveriesSent,
  uncountDeliveryAttempts,
  emailOfUser,
  enabledUserNamesIn,
  finishDelivery,
  getDelivery,
  getNotificationPreferences,
  insertDeliveries,
  listDeliveries,
  markDeliverySent,
  putNotificationPreferences,
  setUserEmail,
  type NewDelivery,
} from './notifications.js';
import { insertUser } from './users.js';
import { registerWorker } from './workers.js';

function delivery(dedupeKey: string, recipient = 'bob'): NewDelivery {
  return {
    id: newId('delivery'),
    dedupeKey,
    event: 'request.pending',
    subjectId: 'req_1',
    channel: 'mail',
    channelType: 'email',
    recipient,
    urgent: false,
    payload: { target: 'prod-db' },
  };
}

describeEachStore('notification outbox storage', ({ store }) => {
  it('writes a delivery once per dedupe key, and walks it to sent', async () => {
    const now = new Date();
    const first = delivery('request.pending:req_1:0:mail:bob');
    expect(await insertDeliveries(store().db, [first, delivery('request.pending:req_1:0:mail:carol', 'carol')], now)).toHaveLength(2);
    // The same event occurring again (a recurring failure) adds nothing.
    expect(await insertDeliveries(store().db, [{ ...delivery(first.dedupeKey), id: newId('delivery') }], now)).toEqual([]);
    expect(await countDeliveryAttempt(store().db, first.id)).toBe(1);
    expect(await countDeliveryAttempt(store().db, first.id)).toBe(2);
    await markDeliverySent(store().db, first.id, now);
    const sent = await getDelivery(store().db, first.id);
    expect(sent).toMatchObject({ status: 'sent', attempts: 2, lastError: null, payload: { target: 'prod-db' } });
    // Final means final: a late failure does not overwrite it, and attempts stop counting.
    await finishDelivery(store().db, first.id, 'failed', 'late', now);
    expect((await getDelivery(store().db, first.id))?.status).toBe('sent');
    expect(await countDeliveryAttempt(store().db, first.id)).toBe(0);
    expect(await countDeliveries(store().db)).toMatchObject({ pending: 1, sent: 1 });
  });

  it('lists deliveries newest first, filtered and paged', async () => {
    const now = new Date();
    const ids = await insertDeliveries(
      store().db,
      Array.from({ length: 5 }, (_, i) => delivery(`page:${i}`, `user${i}`)),
      now,
    );
    // Ids are time-ordered to the millisecond; within one, their order is still total and stable.
    const newest = [...ids].sort().reverse();
    const firstPage = await listDeliveries(store().db, { limit: 2, event: 'request.pending', subject: 'req_1', channel: 'mail' });
    expect(firstPage.map((d) => d.id)).toEqual(newest.slice(0, 2));
    const next = await listDeliveries(store().db, { limit: 2, before: firstPage[1]!.id });
    expect(next.map((d) => d.id)).toEqual(newest.slice(2, 4));
    expect((await listDeliveries(store().db, { recipient: 'user0' })).map((d) => d.recipient)).toEqual(['user0']);
    expect(await listDeliveries(store().db, { status: 'failed' })).toEqual([]);
  });

  it('keeps preferences per person and finds people and their addresses', async () => {
    const now = new Date();
    expect(await getNotificationPreferences(store().db, 'dora')).toBeUndefined();
    await putNotificationPreferences(
      store().db,
      { principalId: 'dora', emailEnabled: false, quietHours: { start: 1320, end: 420 }, timezone: 'Europe/Berlin' },
      now,
    );
    await putNotificationPreferences(store().db, { principalId: 'dora', emailEnabled: true, quietHours: null, timezone: 'UTC' }, now);
    expect(await getNotificationPreferences(store().db, 'dora')).toEqual({ principalId: 'dora', emailEnabled: true, quietHours: null, timezone: 'UTC' });

    for (const [name, groups] of [
      ['lead1', ['leads']],
      ['lead2', ['leads', 'sre']],
      ['other', ['sre']],
    ] as const) {
      await insertUser(store().db, {
        id: newId('user'),
        name,
        kind: 'user',
        groups: JSON.stringify(groups),
        password_hash: null,
        created_at: now,
        disabled_at: null,
      });
    }
    expect(await enabledUserNamesIn(store().db, ['other'], ['leads'])).toEqual(['lead1', 'lead2', 'other']);
    expect(await enabledUserNamesIn(store().db, [], [])).toEqual([]);
    expect(await emailOfUser(store().db, 'lead1')).toBeNull();
    expect(await setUserEmail(store().db, 'lead1', 'lead1@example.com')).toBe(true);
    expect(await setUserEmail(store().db, 'nobody', 'x@example.com')).toBe(false);
    expect(await emailOfUser(store().db, 'lead1')).toBe('lead1@example.com');
    expect(await emailOfUser(store().db, 'nobody')).toBeUndefined();
  });

  it('lets a worker claim only the kinds of job it runs', async () => {
    const lease = await registerWorker(store());
    try {
      await scheduleJob(store().db, 'request_timeout', 'req_kinds', { delayMs: 0 });
      await scheduleJobsNow(store().db, 'notify', ['ntf_kinds']);
      expect(await msUntilNextJob(store().db, { only: NOTIFICATION_JOB_KINDS })).toBe(0);
      const lifecycle = await claimDueJobs(store().db, lease.key, 100, 60_000, { kinds: { except: NOTIFICATION_JOB_KINDS } });
      expect(lifecycle.map((j) => j.kind)).not.toContain('notify');
      expect(lifecycle.map((j) => j.subjectId)).toContain('req_kinds');
      const notifications = await claimDueJobs(store().db, lease.key, 100, 60_000, { kinds: { only: NOTIFICATION_JOB_KINDS } });
      expect(notifications.map((j) => [j.kind, j.subjectId])).toEqual([['notify', 'ntf_kinds']]);
    } finally {
      await lease.release();
    }
  });

  it('reads a round of deliveries with their people in one go, and counts, gives back and marks them together', async () => {
    const now = new Date();
    for (const [name, groups, email] of [
      ['rita', '["ops"]', 'rita@example.com'],
      ['sam', '["ops","dba"]', null],
    ] as const) {
      await insertUser(store().db, { id: newId('user'), name, kind: 'user', groups, password_hash: null, created_at: now, disabled_at: null });
      if (email) await setUserEmail(store().db, name, email);
    }
    await putNotificationPreferences(
      store().db,
      { principalId: 'rita', emailEnabled: true, quietHours: { start: 1320, end: 420 }, timezone: 'Europe/Berlin' },
      now,
    );
    const round = [
      delivery('round:rita', 'rita'),
      delivery('round:sam', 'sam'),
      delivery('round:ghost', 'ghost'),
      delivery('round:addr', 'address:x@example.com'),
    ];
    await insertDeliveries(store().db, round, now);
    const { now: dbNow, deliveries } = await deliveriesToSend(
      store().db,
      round.map((d) => d.id),
    );
    expect(Math.abs(dbNow.getTime() - Date.now())).toBeLessThan(60_000);
    const by = new Map(deliveries.map((d) => [d.delivery.recipient, d]));
    expect(by.get('rita')).toMatchObject({ email: 'rita@example.com', preferences: { quietHours: { start: 1320, end: 420 }, timezone: 'Europe/Berlin' } });
    expect(by.get('sam')).toMatchObject({ email: null, preferences: undefined });
    expect(by.get('ghost')).toMatchObject({ email: undefined, preferences: undefined });
    expect(by.get('address:x@example.com')?.email).toBeUndefined();

    const ids = round.map((d) => d.id);
    expect([...(await countDeliveryAttempts(store().db, ids)).values()]).toEqual([1, 1, 1, 1]);
    await uncountDeliveryAttempts(store().db, [round[1]!.id]);
    await markDeliveriesSent(store().db, [round[0]!.id, round[3]!.id]);
    const after = await countDeliveryAttempts(store().db, ids);
    // Sent ones are final (no longer counted); the one given back starts again from 0.
    expect(Object.fromEntries([...after].map(([id, n]) => [round.find((d) => d.id === id)!.recipient, n]))).toEqual({ sam: 1, ghost: 2 });
    expect(await getDelivery(store().db, round[0]!.id)).toMatchObject({ status: 'sent', sentAt: expect.any(Date) });
    expect((await enabledUsersIn(store().db, ['rita'], ['dba'])).map((u) => [u.name, u.groups])).toEqual([
      ['rita', ['ops']],
      ['sam', ['ops', 'dba']],
    ]);
  });
});
