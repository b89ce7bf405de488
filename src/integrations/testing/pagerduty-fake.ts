import { FakeServer, type FakeAnswer, type FakeCall } from './fake-server.js';

/**
 * A stand-in for the PagerDuty REST API v2, the two endpoints Lapse uses, with the real shapes
 * (https://developer.pagerduty.com/api-reference/): `GET /users?query=` and `GET /oncalls` with
 * `user_ids[]`, `since`, `until`, `limit`, `offset`. It checks `Authorization: Token token=…` and
 * the v2 Accept header, refuses a window whose `since` is after `until` as PagerDuty does, and
 * returns only entries overlapping the window. It cannot prove how PagerDuty computes on-call
 * entries from schedules and overrides: tests state the entries directly.
 */
export interface FakeOncall {
  readonly user: string;
  readonly escalationPolicy: string;
  readonly schedule?: string;
  readonly level?: number;
  readonly start: Date | null;
  readonly end: Date | null;
}

const ref = (type: string, id: string) => ({
  id,
  type: `${type}_reference`,
  summary: `${type} ${id}`,
  self: `https://api.pagerduty.com/${type}s/${id}`,
  html_url: `https://example.pagerduty.com/${type}s/${id}`,
});

export class PagerDutyFake extends FakeServer {
  readonly users: { id: string; email: string; name: string }[] = [];
  readonly oncalls: FakeOncall[] = [];

  constructor(private readonly token: string) {
    super();
  }

  protected answer(call: FakeCall): FakeAnswer {
    if (call.headers.authorization !== `Token token=${this.token}`) return { status: 401, json: { error: { message: 'Unauthorized', code: 2006 } } };
    if (call.headers.accept !== 'application/vnd.pagerduty+json;version=2') return { status: 406, json: { error: { message: 'Not Acceptable' } } };
    const q = call.url.searchParams;
    const limit = Number(q.get('limit') ?? 25);
    const offset = Number(q.get('offset') ?? 0);
    if (call.method === 'GET' && call.url.pathname === '/users') {
      const query = (q.get('query') ?? '').toLowerCase();
      const users = this.users.filter((u) => u.email.toLowerCase().includes(query) || u.name.toLowerCase().includes(query));
      return {
        status: 200,
        json: {
          users: users.slice(offset, offset + limit).map((u) => ({ ...ref('user', u.id), type: 'user', name: u.name, email: u.email })),
          limit,
          offset,
          more: offset + limit < users.length,
          total: null,
        },
      };
    }
    if (call.method === 'GET' && call.url.pathname === '/oncalls') {
      const since = new Date(q.get('since') ?? Date.now());
      const until = new Date(q.get('until') ?? since);
      if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime()) || since > until) {
        return { status: 400, json: { error: { message: 'Invalid Input Provided', code: 2001, errors: ['Since must be before until'] } } };
      }
      const userIds = q.getAll('user_ids[]');
      const matching = this.oncalls.filter(
        (o) => (userIds.length === 0 || userIds.includes(o.user)) && (o.start === null || o.start <= until) && (o.end === null || o.end > since),
      );
      const page = matching.slice(offset, offset + limit).map((o) => ({
        escalation_policy: ref('escalation_policy', o.escalationPolicy),
        escalation_level: o.level ?? 1,
        schedule: o.schedule ? ref('schedule', o.schedule) : null,
        user: ref('user', o.user),
        start: o.start?.toISOString() ?? null,
        end: o.end?.toISOString() ?? null,
      }));
      return { status: 200, json: { oncalls: page, limit, offset, more: offset + limit < matching.length, total: null } };
    }
    return { status: 404, json: { error: { message: 'Not Found', code: 2100 } } };
  }
}
