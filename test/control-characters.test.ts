import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/api.js';
import { describeEachStore } from './support/stores.js';

/**
 * Control characters in free text, through the API: each door named in issue 9 refuses them with
 * `400 validation_failed` naming the field, and nothing is stored. PostgreSQL rejects NUL in text,
 * so before this a NUL reached the database and came back as a 500.
 */
describeEachStore('control characters in free text', ({ store }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(store());
  });
  afterAll(async () => {
    await api?.stop();
  });

  const refused = (answer: { statusCode: number; json(): unknown }, field: string) => {
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'validation_failed', detail: expect.stringContaining(field) });
    expect((answer.json() as { detail: string }).detail).toMatch(/control character/);
  };

  it('refuses NUL and other control characters with 400 naming the field', async () => {
    const events = async () =>
      Number(
        (
          await store()
            .db.selectFrom('audit_events')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await events();
    refused(await api.call(null, { method: 'POST', url: '/api/v1/auth/login', payload: { username: 'root\u0000', password: 'whatever it is' } }), 'username');
    refused(
      await api.call('alice', {
        method: 'POST',
        url: '/api/v1/requests',
        payload: { target: 'prod-db', entitlement: 'readonly', duration: '1h', reason: 'INC-1\u0000 lag' },
      }),
      'reason',
    );
    refused(
      await api.call('alice', {
        method: 'POST',
        url: '/api/v1/requests',
        payload: { target: 'prod-db', entitlement: 'readonly', duration: '1h', reason: 'INC-1 \u001b[2J' },
      }),
      'reason',
    );
    refused(await api.call('root', { method: 'POST', url: '/api/v1/tokens', payload: { name: 'ci\u0000', scopes: ['read'] } }), 'name');
    refused(await api.call('auditor', { method: 'GET', url: '/api/v1/audit?actor=root%00' }), 'actor');
    refused(await api.call('auditor', { method: 'GET', url: '/api/v1/audit?subject=req_1%07' }), 'subject');
    refused(await api.call('root', { method: 'DELETE', url: '/api/v1/tokens/tok%00x' }), 'id');
    expect(await events()).toBe(before);
  });

  it('keeps tab and newline in multi-line text (reason, review comment), and refuses the rest there too', async () => {
    const created = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'admin', duration: '30m', reason: 'rotate the slot:\n\t1. stop\n\t2. start', ticket: 'OPS-1' },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().request.id as string;
    expect(created.json().request.reason).toBe('rotate the slot:\n\t1. stop\n\t2. start');
    refused(await api.call('bob', { method: 'POST', url: `/api/v1/requests/${id}/reviews`, payload: { decision: 'approve', comment: 'ok\u0000' } }), 'comment');
    refused(await api.call('bob', { method: 'POST', url: `/api/v1/requests/${id}/reviews`, payload: { decision: 'approve', comment: 'ok\rfine' } }), 'comment');
    const review = await api.call('bob', {
      method: 'POST',
      url: `/api/v1/requests/${id}/reviews`,
      payload: { decision: 'approve', comment: 'looks right:\n- slot named' },
    });
    expect(review.statusCode).toBe(200);
    // One-line fields take no newline.
    refused(
      await api.call('alice', {
        method: 'POST',
        url: '/api/v1/requests',
        payload: { target: 'prod-db', entitlement: 'admin', duration: '30m', reason: 'rotate the slot again', ticket: 'OPS-1\nOPS-2' },
      }),
      'ticket',
    );
  });
});
