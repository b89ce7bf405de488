export { PagerDutyFake, type FakeOncall } from './pagerduty-fake.js';
export { JiraFake, type FakeIssue } from './jira-fake.js';
export { ServiceNowFake, type FakeRecord } from './servicenow-fake.js';
export { OncallWebhookFake } from './oncall-webhook-fake.js';
export type { FakeCall } from './fake-server.js';
