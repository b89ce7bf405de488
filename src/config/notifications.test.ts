import { describe, expect, it } from 'vitest';
import { isLapseError } from '../domain/errors.js';
import { parseConfig } from './load.js';

const BASE = `
version: 1
targets:
  prod-db:
    connector: noop
    entitlements: { readonly: {}, admin: {} }
policies:
  - name: sre-admin
    subjects: { groups: [sre] }
    entitlements: ["prod-db/admin"]
    approval: { stages: [{ name: leads, approvers: { groups: [leads] } }] }
`;

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(BASE + yaml, 'lapse.yaml', env);
  } catch (error) {
    if (isLapseError(error, 'config_invalid')) return (error.details.problems as string[] | undefined) ?? [error.message];
    throw error;
  }
  return [];
}

describe('notifications in lapse.yaml', () => {
  it('builds channels and rules, with the password resolved and the condition compiled', () => {
    const config = parseConfig(
      `${BASE}
notifications:
  channels:
    mail:
      type: email
      from: lapse@example.com
      smtp: { host: smtp.example.com, user: lapse, password: "\${env:SMTP_PASSWORD}" }
  rules:
    - events: [request.pending, request.decided]
      channels: [mail]
      targets: ["prod-db/*"]
      policies: [sre-admin]
      when: 'event.entitlement.startsWith("prod-db/")'
    - events: ["*"]
      channels: [mail]
      to: { audience: false, addresses: [security@example.com] }
  approvals: { remindAfter: 1h, escalateAfter: 4h, escalateTo: { groups: [sre-managers] } }
  endingSoon: 15m
`,
      'lapse.yaml',
      { SMTP_PASSWORD: 'hunter2' },
    );
    const n = config.notifications;
    expect(n.channels.get('mail')).toMatchObject({ type: 'email', smtp: { host: 'smtp.example.com', port: 587, secure: false, password: 'hunter2' } });
    expect(n.rules[0]!.when?.({ event: { entitlement: 'prod-db/admin' } })).toBe(true);
    expect(n.rules[0]!.when?.({ event: { entitlement: 'other/x' } })).toBe(false);
    expect(n.rules[1]!.events.has('break_glass.used')).toBe(true);
    expect(n.approvals).toMatchObject({ remindAfterMs: 3_600_000, escalateAfterMs: 14_400_000, escalateTo: { groups: ['sre-managers'] } });
    expect(n.endingSoonMs).toBe(900_000);
  });

  it('is empty when not configured', () => {
    const config = parseConfig(BASE, 'lapse.yaml', {});
    expect(config.notifications.rules).toEqual([]);
    expect(config.notifications.endingSoonMs).toBe(600_000);
  });

  it('says what is wrong, where, and how to fix it', () => {
    const found = problems(`
notifications:
  channels:
    mail:
      type: email
      from: lapse@example.com
      smtp: { host: smtp.example.com, user: lapse, password: hunter2, allowInsecure: true }
  rules:
    - { events: [request.pending], channels: [nope], policies: [ghost], targets: ["other/*"], when: 'principal.id == "x"' }
    - { events: [request.pending], channels: [mail], to: { audience: false } }
  approvals: { escalateAfter: 4h }
`);
    const text = found.join('\n');
    expect(text).toMatch(/notifications\.channels\.mail\.smtp\.password: give the password as a reference/);
    expect(text).toMatch(/notifications\.channels\.mail\.smtp\.allowInsecure: only allowed for a server on 127\.0\.0\.1/);
    expect(text).toMatch(/notifications\.rules\[0\]\.channels\[0\]: there is no channel "nope"/);
    expect(text).toMatch(/notifications\.rules\[0\]\.policies\[0\]: there is no policy "ghost"/);
    expect(text).toMatch(/notifications\.rules\[0\]\.targets\[0\]: "other\/\*" matches no configured entitlement/);
    expect(text).toMatch(/notifications\.rules\[0\]\.when: "principal" is not in the expression context \(it has event\)/);
    expect(text).toMatch(/notifications\.rules\[1\]\.to: with audience false/);
    expect(text).toMatch(/notifications\.approvals\.escalateTo: name the users or groups/);
    // Every problem is located in the file.
    for (const problem of found) expect(problem).toMatch(/^lapse\.yaml:\d+:\d+: /);
    // The password itself never appears in an error.
    expect(text).not.toMatch(/hunter2/);
  });

  it('refuses channel types this Lapse does not have, unknown keys and unknown events', () => {
    const text = problems(`
notifications:
  channels:
    chat: { type: pigeon, token: x }
  rules:
    - { events: [request.exploded], channels: [chat], colour: red }
`).join('\n');
    expect(text).toMatch(/notifications\.channels\.chat.*unknown channel type: this Lapse has "email"/);
    expect(text).toMatch(/notifications\.rules\.0\.events\.0|notifications\.rules\[0\]\.events\[0\]/);
    expect(text).toMatch(/unknown key "colour"/);
  });

  it('builds a Slack channel: token and signing secret by reference, opted-in policies, rules posting to Slack channels', () => {
    const config = parseConfig(
      `${BASE}
notifications:
  channels:
    chat:
      type: slack
      token: "\${env:SLACK_TOKEN}"
      signingSecret: "\${env:SLACK_SECRET}"
      interactive: { policies: [sre-admin] }
  rules:
    - { events: [request.pending], channels: [chat], to: { slackChannels: [C0APPROVALS] } }
`,
      'lapse.yaml',
      { SLACK_TOKEN: 'xoxb-1234-5678-abcdefgh', SLACK_SECRET: '0123456789abcdef0123456789abcdef' },
    );
    const chat = config.notifications.channels.get('chat');
    expect(chat).toMatchObject({ type: 'slack', token: 'xoxb-1234-5678-abcdefgh', apiUrl: 'https://slack.com/api/', timeoutMs: 10_000 });
    expect(chat?.type === 'slack' && [...chat.interactivePolicies]).toEqual(['sre-admin']);
    expect(config.notifications.rules[0]!.to.slackChannels).toEqual(['C0APPROVALS']);
  });

  it('refuses an inline Slack token, plain http to a remote API, unknown policies, channel names and Slack posts without a Slack channel', () => {
    const found = problems(
      `
notifications:
  channels:
    chat:
      type: slack
      token: xoxb-1234-5678-abcdefgh
      signingSecret: "\${env:SLACK_SECRET}"
      interactive: { policies: [nope] }
      apiUrl: http://slack.example.com/api/
    mail: { type: email, from: lapse@example.com, smtp: { host: smtp.example.com } }
  rules:
    - { events: [request.pending], channels: [mail], to: { slackChannels: [C0APPROVALS] } }
`,
      { SLACK_SECRET: 'short' },
    );
    const text = found.join('\n');
    expect(text).toMatch(/notifications\.channels\.chat\.token: give it as a reference/);
    expect(text).toMatch(/notifications\.channels\.chat\.signingSecret: the value it refers to does not look like/);
    expect(text).toMatch(/notifications\.channels\.chat\.interactive\.policies\[0\]: there is no policy "nope"/);
    expect(text).toMatch(/notifications\.channels\.chat\.apiUrl: plain http is only allowed/);
    expect(text).toMatch(/notifications\.rules\[0\]\.to\.slackChannels: only a channel of type slack/);
    expect(text).not.toContain('xoxb-1234-5678-abcdefgh');
    const names = problems(`
notifications:
  channels: { chat: { type: slack, token: "\${env:T}", signingSecret: "\${env:S}" } }
  rules: [{ events: [request.pending], channels: [chat], to: { slackChannels: ["#approvals"] } }]
`).join('\n');
    expect(names).toMatch(/notifications\.rules\[0\]\.to\.slackChannels\[0\]: write a Slack channel id/);
  });
});
