import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAuditEvents } from '../../audit/index.js';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { openPgliteStore } from '../../../test/support/stores.js';
import type { Store } from '../../store/index.js';

/** Who may call the Slack routes: Slack (signed) for what Slack posts, people for their own link, admins for mapping. */
describe('Slack routes: unauthenticated and wrong-user calls fail', () => {
  let store: Store;
  let api: TestApi;
  beforeAll(async () => {
    store = await openPgliteStore();
    api = await startTestApi(store);
  });
  afterAll(async () => {
    await api?.stop();
    await store?.close();
  });

  it('refuses the link code and the link status without a credential', async () => {
    expect((await api.call(null, { method: 'POST', url: '/api/v1/me/slack/link-code' })).statusCode).toBe(401);
    expect((await api.call(null, { method: 'GET', url: '/api/v1/me/slack' })).statusCode).toBe(401);
  });

  it('refuses admin mapping to anyone but an admin, audited', async () => {
    const own = await api.call('alice', { method: 'POST', url: '/api/v1/integrations/slack/links', payload: { user: 'alice', slackUserId: 'U0ALICE' } });
    expect(own.statusCode).toBe(403);
    const other = await api.call('bob', { method: 'POST', url: '/api/v1/integrations/slack/links', payload: { user: 'alice', slackUserId: null } });
    expect(other.statusCode).toBe(403);
    // Their tokens lack the admin scope: refused before the role is looked at, and audited.
    for (const who of ['alice', 'bob']) {
      const events = await queryAuditEvents(store.db, { actor: who, limit: 10 });
      expect(events.some((e) => e.data?.route === '/api/v1/integrations/slack/links')).toBe(true);
    }
    expect((await api.call('alice', { method: 'GET', url: '/api/v1/me/slack' })).json()).toEqual({ slackUserId: null });
  });

  it('answers what Slack posts with 404 when no Slack channel is configured, whatever it sent', async () => {
    for (const url of ['/api/v1/integrations/slack/interactions', '/api/v1/integrations/slack/commands']) {
      const res = await api.call(null, {
        method: 'POST',
        url,
        payload: 'payload=%7B%7D',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-signature': 'v0=00', 'x-slack-request-timestamp': '1' },
      });
      expect(res.statusCode).toBe(404);
      expect(res.json<{ detail: string }>().detail).toBe('Slack is not configured on this Lapse');
    }
  });

  it('refuses a body over the limit before reading it', async () => {
    const res = await api.call(null, {
      method: 'POST',
      url: '/api/v1/integrations/slack/interactions',
      payload: `payload=${'x'.repeat(600 * 1024)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.statusCode).toBe(413);
  });
});
