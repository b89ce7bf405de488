import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { waitFor } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';

describeEachStore('requests, reviews and grants over HTTP', ({ store }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(store());
  });
  afterAll(async () => {
    await api.stop();
  });

  const grantOf = async (requestId: string) => (await api.call('alice', { method: 'GET', url: `/api/v1/requests/${requestId}` })).json().grant;

  it('shows each person the catalogue of what they may request, with its terms', async () => {
    const alice = (await api.call('alice', { method: 'GET', url: '/api/v1/catalogue' })).json();
    expect(alice.items.map((i: { target: string; entitlement: string }) => `${i.target}/${i.entitlement}`)).toEqual([
      'prod-db/readonly',
      'prod-db/admin',
      'prod-db/ephemeral',
      'flaky/readonly',
    ]);
    const admin = alice.items.find((i: { entitlement: string }) => i.entitlement === 'admin');
    expect(admin).toMatchObject({ autoApprove: false, maxDurationMs: 4 * 3_600_000, requires: { ticketPattern: '^OPS-[0-9]+$', justificationMinLength: 10 } });
    expect(admin.stages.map((s: { name: string }) => s.name)).toEqual(['leads', 'security']);
    expect((await api.call('mallory', { method: 'GET', url: '/api/v1/catalogue' })).json().items).toEqual([]);
  });

  it('pages the approvals inbox in the database: only the approvers of the current stage, each request once, newest first', async () => {
    const ids: string[] = [];
    for (const ticket of ['OPS-301', 'OPS-302', 'OPS-303']) {
      const created = await api.call('alice', {
        method: 'POST',
        url: '/api/v1/requests',
        payload: { target: 'prod-db', entitlement: 'admin', duration: '30m', reason: 'inbox paging check', ticket },
      });
      ids.unshift(created.json().request.id);
    }
    const inbox = async (who: 'bob' | 'carol') => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: { id: string }[]; nextCursor: string | null } = (
          await api.call(who, { method: 'GET', url: `/api/v1/requests?scope=review&limit=1${cursor ? `&cursor=${cursor}` : ''}` })
        ).json();
        expect(page.items.length).toBeLessThanOrEqual(1);
        seen.push(...page.items.map((r: { id: string }) => r.id));
        cursor = page.nextCursor;
      } while (cursor);
      return seen.filter((id) => ids.includes(id));
    };
    expect(await inbox('bob')).toEqual(ids);
    expect(await inbox('carol')).toEqual([]);
    await api.call('bob', { method: 'POST', url: `/api/v1/requests/${ids[1]}/reviews`, payload: { decision: 'approve' } });
    expect(await inbox('bob')).toEqual([ids[0], ids[2]]);
    expect(await inbox('carol')).toEqual([ids[1]]);
    expect(
      (await api.call('alice', { method: 'GET', url: '/api/v1/requests?scope=review' })).json().items.filter((r: { id: string }) => ids.includes(r.id)),
    ).toEqual([]);
    for (const id of ids) await api.call('alice', { method: 'POST', url: `/api/v1/requests/${id}/cancel` });
  });

  it('runs a request through two approval stages to an active grant, with a timeline', async () => {
    const created = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'admin', duration: '30m', reason: 'rotate the replication slot', ticket: 'OPS-12' },
    });
    expect(created.statusCode).toBe(201);
    const request = created.json().request;
    expect(request).toMatchObject({ status: 'pending', durationMs: 1_800_000, ticket: 'OPS-12', principal: { id: 'alice' } });

    const inbox = (await api.call('bob', { method: 'GET', url: '/api/v1/requests?scope=review' })).json();
    expect(inbox.items.map((r: { id: string }) => r.id)).toContain(request.id);
    expect((await api.call('carol', { method: 'GET', url: '/api/v1/requests?scope=review' })).json().items.map((r: { id: string }) => r.id)).not.toContain(
      request.id,
    );

    const first = await api.call('bob', { method: 'POST', url: `/api/v1/requests/${request.id}/reviews`, payload: { decision: 'approve', comment: 'ok' } });
    expect(first.json()).toMatchObject({ effect: 'advanced' });
    const second = await api.call('carol', { method: 'POST', url: `/api/v1/requests/${request.id}/reviews`, payload: { decision: 'approve' } });
    expect(second.json()).toMatchObject({ effect: 'approved', request: { status: 'approved' } });

    const grant = await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'active',
    );
    expect(new Date(grant.expiresAt).getTime() - new Date(grant.activatedAt).getTime()).toBe(1_800_000);
    const detail = (await api.call('alice', { method: 'GET', url: `/api/v1/requests/${request.id}` })).json();
    expect(detail.reviews.map((r: { reviewerId: string }) => r.reviewerId)).toEqual(['bob', 'carol']);
    expect(detail.timeline.map((e: { action: string }) => e.action)).toEqual([
      'request.pending',
      'review.approve',
      'review.approve',
      'request.approved',
      'grant.activated',
    ]);

    const mine = (await api.call('alice', { method: 'GET', url: '/api/v1/grants?status=active' })).json();
    expect(mine.items.map((g: { id: string }) => g.id)).toContain(grant.id);
    const released = await api.call('alice', { method: 'POST', url: `/api/v1/grants/${grant.id}/release`, payload: { reason: 'done' } });
    expect(released.json().grant.status).toMatch(/revoking|revoked/);
    await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'revoked',
    );
  });

  it('hands out credentials once, never cached', async () => {
    const created = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'ephemeral', duration: '10m', reason: 'INC-3' },
    });
    const grant = await waitFor(
      () => grantOf(created.json().request.id),
      (g) => g?.status === 'active',
    );
    expect(grant.credentialsWaiting).toBe(true);
    expect((await api.call('bob', { method: 'POST', url: `/api/v1/grants/${grant.id}/credentials` })).statusCode).toBe(404);
    const first = await api.call('alice', { method: 'POST', url: `/api/v1/grants/${grant.id}/credentials` });
    expect(first.statusCode).toBe(200);
    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.json().credentials.username).toBe(`noop_${grant.id}`);
    const second = await api.call('alice', { method: 'POST', url: `/api/v1/grants/${grant.id}/credentials` });
    expect(second.statusCode).toBe(410);
    expect(second.json()).toMatchObject({ code: 'gone' });
  });

  it('replays a POST sent again with the same Idempotency-Key, and refuses the key for another body', async () => {
    const payload = { target: 'prod-db', entitlement: 'readonly', duration: '5m', reason: 'idempotent' };
    const headers = { 'idempotency-key': `k-${Date.now()}` };
    const first = await api.call('alice', { method: 'POST', url: '/api/v1/requests', payload, headers });
    const again = await api.call('alice', { method: 'POST', url: '/api/v1/requests', payload, headers });
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().request.id).toBe(first.json().request.id);
    const other = await api.call('alice', { method: 'POST', url: '/api/v1/requests', payload: { ...payload, reason: 'different' }, headers });
    expect(other.statusCode).toBe(409);
    // Keys older than a day are swept when the same caller sends a keyed POST again.
    await store()
      .db.insertInto('idempotency_keys')
      .values({ principal_id: 'alice', key: 'ancient', fingerprint: 'x', status: 201, body: '{}', created_at: new Date(Date.now() - 25 * 3_600_000) })
      .execute();
    await api.call('alice', { method: 'POST', url: '/api/v1/requests', payload, headers: { 'idempotency-key': `k2-${Date.now()}` } });
    expect(await store().db.selectFrom('idempotency_keys').select('key').where('key', '=', 'ancient').execute()).toEqual([]);
    // The key is per caller: bob's identical key is his own request.
    const bob = await api.call('bob', { method: 'POST', url: '/api/v1/requests', payload, headers });
    expect(bob.json().request?.id ?? null).not.toBe(first.json().request.id);
  });

  it('runs concurrent POSTs with one Idempotency-Key once: the later one answers with the first result', async () => {
    const payload = { target: 'prod-db', entitlement: 'readonly', duration: '5m', reason: `concurrent ${Date.now()}` };
    const headers = { 'idempotency-key': `c-${Date.now()}` };
    const answers = await Promise.all(Array.from({ length: 4 }, () => api.call('alice', { method: 'POST', url: '/api/v1/requests', payload, headers })));
    expect(answers.map((a) => a.statusCode)).toEqual([201, 201, 201, 201]);
    expect(new Set(answers.map((a) => a.json().request.id)).size).toBe(1);
    expect(answers.filter((a) => a.headers['idempotent-replayed'] === 'true')).toHaveLength(3);
    expect(await store().db.selectFrom('requests').select('id').where('reason', '=', payload.reason).execute()).toHaveLength(1);

    // The grant's release, keyed: the same answer twice, one release in the audit log.
    const grant = await waitFor(
      () => grantOf(answers[0]!.json().request.id),
      (g) => g?.status === 'active',
    );
    const release = {
      method: 'POST' as const,
      url: `/api/v1/grants/${grant.id}/release`,
      payload: { reason: 'done' },
      headers: { 'idempotency-key': `r-${grant.id}` },
    };
    const released = await api.call('alice', release);
    const replayed = await api.call('alice', release);
    expect(released.statusCode).toBe(200);
    expect(released.json().grant).toMatchObject({ id: grant.id, status: 'revoking', endReason: 'released', credentialsWaiting: false });
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.json()).toEqual(released.json());
    const events = await store().db.selectFrom('audit_events').select('payload').execute();
    expect(events.filter((e) => e.payload.includes('"grant.released"') && e.payload.includes(grant.id))).toHaveLength(1);
  });

  it('pages through lists with a cursor, newest first, without repeats', async () => {
    for (let i = 0; i < 5; i += 1)
      await api.call('alice', {
        method: 'POST',
        url: '/api/v1/requests',
        payload: { target: 'flaky', entitlement: 'readonly', duration: '1m', reason: `page ${i}` },
      });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string; target: string }[]; nextCursor: string | null } = (
        await api.call('alice', { method: 'GET', url: `/api/v1/requests?target=flaky&limit=2${cursor ? `&cursor=${cursor}` : ''}` })
      ).json();
      seen.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
    expect([...seen].sort().reverse()).toEqual(seen);
    expect((await api.call('alice', { method: 'GET', url: '/api/v1/requests?cursor=bm9wZQ' })).statusCode).toBe(400);
  });

  it('lists break-glass uses awaiting their after-the-fact review, and reviews each once', async () => {
    const used = (
      await api.call('alice', {
        method: 'POST',
        url: '/api/v1/break-glass',
        payload: { target: 'prod-db', entitlement: 'admin', duration: '10m', reason: 'the primary is down, failing over now' },
      })
    ).json().request;
    const awaiting = async () =>
      (await api.call('auditor', { method: 'GET', url: '/api/v1/requests?scope=all&awaitingReview=true' })).json().items.map((r: { id: string }) => r.id);
    expect(await awaiting()).toContain(used.id);
    const kinds = (await api.call('auditor', { method: 'GET', url: '/api/v1/requests?scope=all&kind=break_glass' }))
      .json()
      .items.map((r: { kind: string }) => r.kind);
    expect(new Set(kinds)).toEqual(new Set(['break_glass']));
    expect(
      (await api.call('root', { method: 'POST', url: `/api/v1/break-glass/${used.id}/review`, payload: { comment: 'justified: INC-77' } })).statusCode,
    ).toBe(200);
    expect(await awaiting()).not.toContain(used.id);
    expect(
      (await api.call('auditor', { method: 'GET', url: '/api/v1/requests?scope=all&awaitingReview=false' })).json().items.map((r: { id: string }) => r.id),
    ).toContain(used.id);
    const again = await api.call('auditor', { method: 'POST', url: `/api/v1/break-glass/${used.id}/review`, payload: {} });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'conflict', detail: expect.stringMatching(/already reviewed by root/) });
    expect((await api.call('auditor', { method: 'GET', url: '/api/v1/requests?scope=all&awaitingReview=yes' })).statusCode).toBe(400);
  });

  it('streams changes the caller may see as Server-Sent Events', async () => {
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    const address = api.app.server.address() as { port: number };
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${address.port}/api/v1/events`, {
      headers: { authorization: `Bearer ${api.tokens.mallory}` },
      signal: controller.signal,
    });
    const aliceStream = await fetch(`http://127.0.0.1:${address.port}/api/v1/events`, {
      headers: { authorization: `Bearer ${api.tokens.alice}` },
      signal: controller.signal,
    });
    expect(aliceStream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const created = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'readonly', duration: '5m', reason: 'sse' },
    });
    const requestId = created.json().request.id;
    const reader = aliceStream.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    // NB. Earlier tests' grants may still change (activations, expiries): wait for this request's, then its grant's activation.
    const mine = () => text.indexOf(`"id":"${requestId}"`);
    while (mine() < 0 || !text.slice(mine()).includes('grant.activated')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    expect(text).toContain(`"id":"${requestId}"`);
    expect(text).toMatch(/event: grant\ndata: \{"id":"grt_[0-9a-z]+","action":"grant.activated"/);
    // mallory sees none of alice's changes.
    const malloryReader = response.body!.getReader();
    const first = await malloryReader.read();
    expect(decoder.decode(first.value)).toBe(': connected\n\n');
    const next = await Promise.race([malloryReader.read(), new Promise((resolve) => setTimeout(() => resolve('quiet'), 500))]);
    expect(next).toBe('quiet');
    controller.abort();
  });
});
