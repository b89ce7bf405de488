import { describe, expect, it } from 'vitest';
import { isLapseError } from '../domain/errors.js';
import { parseConfig } from './load.js';

const BASE = `
version: 1
targets:
  prod-db:
    connector: noop
    entitlements: { readonly: {} }
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

describe('audit sinks and witnesses in lapse.yaml', () => {
  it('builds sinks and witnesses, the HEC token resolved from its reference, with defaults', () => {
    const config = parseConfig(
      `${BASE}
audit:
  sinks:
    - name: splunk
      format: ocsf
      transport: { type: splunk-hec, url: "https://splunk.example:8088", token: "\${env:HEC_TOKEN}" }
    - name: local
      format: jsonl
      transport: { type: file, path: /var/log/lapse/audit.jsonl }
    - name: siem
      format: syslog
      transport: { type: syslog-tls, host: siem.example }
  witnesses:
    - { name: offsite, type: file, path: /mnt/worm/lapse-checkpoints.jsonl }
    - { name: tsa, type: tsa, url: "https://tsa.example/tsr", dir: /var/lib/lapse/timestamps }
`,
      'lapse.yaml',
      { HEC_TOKEN: 'hec-secret' },
    );
    const exported = config.audit.export;
    expect(exported.sinks.map((s) => [s.name, s.format, s.transport.type, s.batchSize, s.checkpoints])).toEqual([
      ['splunk', 'ocsf', 'splunk-hec', 500, true],
      ['local', 'jsonl', 'file', 500, true],
      ['siem', 'syslog', 'syslog-tls', 500, true],
    ]);
    expect(exported.sinks[0]!.transport).toMatchObject({ token: 'hec-secret', sourcetype: 'lapse:audit' });
    expect(exported.sinks[1]!.transport).toMatchObject({ maxBytes: 100 * 1024 * 1024, keep: 10 });
    expect(exported.sinks[2]!.transport).toMatchObject({ port: 6514 });
    expect(exported.witnesses.map((w) => w.type)).toEqual(['file', 'tsa']);
    expect(exported).toMatchObject({ pollIntervalMs: 1_000, timeoutMs: 10_000, backoffMinMs: 1_000, backoffMaxMs: 300_000 });
  });

  it('no sinks by default', () => {
    expect(parseConfig(BASE, 'lapse.yaml', {}).audit.export.sinks).toEqual([]);
  });

  it('refuses a relative path, an unknown format or transport, each located', () => {
    const found = problems(`
audit:
  sinks:
    - { name: a, format: jsonl, transport: { type: file, path: relative/audit.jsonl } }
    - { name: b, format: leef, transport: { type: file, path: /tmp/x } }
    - { name: c, format: cef, transport: { type: kafka } }
`).join('\n');
    expect(found).toMatch(/audit\.sinks\[0\]\.transport\.path: write an absolute path/);
    expect(found).toMatch(/audit\.sinks\[1\]\.format: Invalid option/);
    expect(found).toMatch(/audit\.sinks\[2\]\.transport/);
  });

  it('refuses an inline token (without echoing it) and duplicate names', () => {
    const found = problems(`
audit:
  sinks:
    - { name: a, format: ocsf, transport: { type: splunk-hec, url: "https://s.example", token: plain-token } }
    - { name: a, format: jsonl, transport: { type: file, path: /tmp/a.jsonl } }
`).join('\n');
    expect(found).toMatch(/audit\.sinks\[0\]\.transport\.token: give it as a reference/);
    expect(found).toMatch(/audit\.sinks\[1\]\.name: "a" is used twice/);
    expect(found).not.toContain('plain-token');
  });

  it('refuses a PEM that is not one, and min above max backoff', () => {
    const found = problems(
      `
audit:
  sinks:
    - { name: d, format: cef, transport: { type: syslog-tls, host: s.example, ca: "\${env:NOT_PEM}" } }
  export: { backoff: { min: 10m, max: 1m } }
`,
      { NOT_PEM: 'hello' },
    ).join('\n');
    expect(found).toMatch(/audit\.sinks\[0\]\.transport\.ca: not a PEM certificate/);
    expect(found).toMatch(/audit\.export\.backoff: min must not exceed max/);
  });
});
