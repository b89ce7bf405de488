import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alice, bob, carol, waitFor } from '../../../test/support/engine.js';
import { startLapseServer, type LapseServer } from '../../../test/support/lapse-server.js';
import { LapseClient } from '../client.js';
import { followRequest } from './client-follow.js';

/** `--wait` against a real server: live over the event stream, and by polling when that fails. */
describe('followRequest', () => {
  let server: LapseServer;
  let token = '';
  beforeAll(async () => {
    server = await startLapseServer();
    token = await server.token('alice');
  });
  afterAll(async () => {
    await server?.close();
  });

  /** A client that records every URL it asks for; `breakEvents` makes the event stream fail. */
  const recordingClient = (breakEvents: boolean) => {
    const urls: string[] = [];
    const client = new LapseClient(
      { server: server.url, token },
      {
        fetch: async (input, init) => {
          const url = String(input);
          urls.push(url.slice(server.url.length));
          if (breakEvents && url.includes('/api/v1/events')) throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
          return fetch(input, init);
        },
      },
    );
    return { client, urls };
  };

  const pendingRequest = () =>
    server.engine.engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'INC-1 rotating keys',
      ticket: 'OPS-1',
    });

  /** Approves (both stages) once the follower has reported the request pending. */
  const approveWhenFollowed = async (requestId: string, lines: string[]) => {
    await waitFor(
      async () => lines.length,
      (n) => n >= 1,
    );
    await server.engine.engine.review({ requestId, reviewer: bob, decision: 'approve' });
    await server.engine.engine.review({ requestId, reviewer: carol, decision: 'approve' });
  };

  it('follows the event stream, reopening it to include the grant, until the access is active', async () => {
    const { request } = await pendingRequest();
    const { client, urls } = recordingClient(false);
    const lines: string[] = [];
    const [result] = await Promise.all([followRequest(client, request.id, 60_000, (line) => lines.push(line)), approveWhenFollowed(request.id, lines)]);
    expect(result.outcome).toBe('active');
    const grantId = result.detail.grant!.id;
    const streams = urls.filter((u) => u.startsWith('/api/v1/events')).map(decodeURIComponent);
    expect(streams[0]).toBe(`/api/v1/events?subject=${request.id}`);
    expect(streams).toContain(`/api/v1/events?subject=${request.id},${grantId}`);
    expect(lines[0]).toMatch(/^pending: waiting for an approval from group sre-leads/);
    expect(lines.at(-1)).toBe(`grant ${grantId} is active`);
    expect(lines.join('\n')).not.toMatch(/live updates lost/);
  });

  it('falls back to looking every 2 s when the stream cannot be opened', async () => {
    const { request } = await pendingRequest();
    const { client, urls } = recordingClient(true);
    const lines: string[] = [];
    const started = Date.now();
    const [result] = await Promise.all([followRequest(client, request.id, 60_000, (line) => lines.push(line)), approveWhenFollowed(request.id, lines)]);
    expect(result.outcome).toBe('active');
    const looks = urls.filter((u) => u.startsWith(`/api/v1/requests/${request.id}`)).length;
    // Polling: roughly one look per 2 s (and never a busy loop).
    expect(looks).toBeGreaterThanOrEqual(2);
    expect(looks).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 2_000) + 2);
  });

  it('stops at the deadline with wait_timeout, the request still pending', async () => {
    const { request } = await pendingRequest();
    const { client } = recordingClient(false);
    const result = await followRequest(client, request.id, 1_500, () => {});
    expect(result.outcome).toBe('wait_timeout');
    expect(result.detail.request.status).toBe('pending');
  });

  it('ends with denied when an approver says no', async () => {
    const { request } = await pendingRequest();
    const { client } = recordingClient(false);
    const lines: string[] = [];
    const deny = (async () => {
      await waitFor(
        async () => lines.length,
        (n) => n >= 1,
      );
      await server.engine.engine.review({ requestId: request.id, reviewer: bob, decision: 'deny', comment: 'no' });
    })();
    const [result] = await Promise.all([followRequest(client, request.id, 60_000, (line) => lines.push(line)), deny]);
    expect(result.outcome).toBe('denied');
  });
});
