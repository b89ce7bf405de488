import { FakeServer, type FakeAnswer, type FakeCall } from './fake-server.js';

/**
 * A stand-in for the ServiceNow Table API `GET /api/now/table/{table}`: basic auth or a bearer
 * token, `sysparm_query=number=…` (anything else in the query is refused with 400, so a test
 * proves Lapse never sends more), `sysparm_fields` with dot-walked `assigned_to.*`, and
 * `sysparm_display_value=all` answers (`{ value, display_value }` per field). It cannot prove
 * ServiceNow's ACLs or state models: tests state the records.
 */
export interface FakeRecord {
  readonly number: string;
  readonly state: string;
  readonly stateLabel: string;
  readonly shortDescription: string;
  readonly assignee?: { readonly userName: string; readonly email: string; readonly name: string };
}

export class ServiceNowFake extends FakeServer {
  readonly records = new Map<string, FakeRecord[]>();

  constructor(private readonly auth: { username: string; password: string } | { token: string }) {
    super();
  }

  protected answer(call: FakeCall): FakeAnswer {
    const expected =
      'token' in this.auth ? `Bearer ${this.auth.token}` : `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    if (call.headers.authorization !== expected) {
      return { status: 401, json: { error: { message: 'User Not Authenticated', detail: 'Required to provide Auth information' }, status: 'failure' } };
    }
    const match = /^\/api\/now\/table\/([a-z0-9_]+)$/.exec(call.url.pathname);
    if (call.method !== 'GET' || !match) return { status: 400, json: { error: { message: 'Invalid table', detail: null }, status: 'failure' } };
    const query = call.url.searchParams.get('sysparm_query') ?? '';
    const number = /^number=([A-Z]{2,10}[0-9]{1,20})$/.exec(query)?.[1];
    if (!number) return { status: 400, json: { error: { message: `fake accepts only number=<NUMBER>, got ${query}`, detail: null }, status: 'failure' } };
    const fields = (call.url.searchParams.get('sysparm_fields') ?? '').split(',');
    const both = call.url.searchParams.get('sysparm_display_value') === 'all';
    const cell = (value: string, label = value) => (both ? { value, display_value: label } : value);
    const found = (this.records.get(match[1]!) ?? []).filter((r) => r.number === number);
    const result = found.slice(0, Number(call.url.searchParams.get('sysparm_limit') ?? 10_000)).map((r) => {
      const all: Record<string, unknown> = {
        number: cell(r.number),
        state: cell(r.state, r.stateLabel),
        short_description: cell(r.shortDescription),
        assigned_to: cell(r.assignee ? 'a1b2c3' : '', r.assignee?.name ?? ''),
        'assigned_to.email': cell(r.assignee?.email ?? ''),
        'assigned_to.user_name': cell(r.assignee?.userName ?? ''),
      };
      return Object.fromEntries(Object.entries(all).filter(([name]) => fields.includes(name)));
    });
    return { status: 200, json: { result } };
  }
}
