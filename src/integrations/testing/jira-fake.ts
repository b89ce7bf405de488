import { FakeServer, type FakeAnswer, type FakeCall } from './fake-server.js';

/**
 * A stand-in for Jira Cloud REST v3 `GET /rest/api/3/issue/{key}`, with basic auth (account
 * email : API token) and Jira's shapes: the issue with `fields.status.statusCategory`, an
 * assignee or null, and the 404 body `{"errorMessages":[…],"errors":{}}` for an issue that does not
 * exist or may not be seen. It cannot prove Jira's permission model or workflow: tests state the
 * status and category.
 */
export interface FakeIssue {
  readonly summary: string;
  readonly status: string;
  readonly category: 'new' | 'indeterminate' | 'done';
  readonly assignee?: { readonly accountId: string; readonly email?: string; readonly name: string };
}

const CATEGORY_NAMES = { new: 'To Do', indeterminate: 'In Progress', done: 'Done' } as const;

export class JiraFake extends FakeServer {
  readonly issues = new Map<string, FakeIssue>();

  constructor(
    private readonly email: string,
    private readonly apiToken: string,
  ) {
    super();
  }

  protected answer(call: FakeCall): FakeAnswer {
    const expected = `Basic ${Buffer.from(`${this.email}:${this.apiToken}`).toString('base64')}`;
    if (call.headers.authorization !== expected) return { status: 401, text: 'Client must be authenticated to access this resource.' };
    const match = /^\/rest\/api\/3\/issue\/([^/]+)$/.exec(call.url.pathname);
    if (call.method !== 'GET' || !match) return { status: 404, json: { errorMessages: ['Not found'], errors: {} } };
    const key = decodeURIComponent(match[1]!);
    const issue = this.issues.get(key);
    if (!issue) return { status: 404, json: { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} } };
    const wanted = (call.url.searchParams.get('fields') ?? '*all').split(',');
    const all = {
      summary: issue.summary,
      status: {
        self: 'https://example.atlassian.net/rest/api/3/status/3',
        name: issue.status,
        id: '3',
        statusCategory: {
          self: 'https://example.atlassian.net/rest/api/3/statuscategory/4',
          id: 4,
          key: issue.category,
          colorName: 'yellow',
          name: CATEGORY_NAMES[issue.category],
        },
      },
      assignee: issue.assignee
        ? {
            accountId: issue.assignee.accountId,
            ...(issue.assignee.email ? { emailAddress: issue.assignee.email } : {}),
            displayName: issue.assignee.name,
            active: true,
          }
        : null,
    };
    const fields = Object.fromEntries(Object.entries(all).filter(([name]) => wanted.includes('*all') || wanted.includes(name)));
    return { status: 200, json: { expand: 'renderedFields', id: '10001', self: `https://example.atlassian.net/rest/api/3/issue/10001`, key, fields } };
  }
}
