import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../domain/canonical-json.js';
import { chainHash, GENESIS_HASH } from './chain.js';
import { EXPORT_FORMATS, formatCheckpoint, formatEvent, type ChainedEvent } from './export-formats.js';

const GOLDEN = join(import.meta.dirname, '../../test/golden/audit-export');
const options = { hostname: 'lapse-1.example', productVersion: '0.1.0' };

/** A fixed chain: a grant and its revoke, a sign-in, a refused one, and text that needs escaping. */
function fixture(): ChainedEvent[] {
  const events = [
    {
      v: 1,
      seq: 1,
      id: 'evt_01',
      at: '2026-12-07T10:00:00.000Z',
      action: 'grant.activated',
      actor: 'system',
      subject: 'grt_1',
      data: { entitlement: 'prod-db/readonly', principal: 'alice', request: 'req_1' },
    },
    {
      v: 1,
      seq: 2,
      id: 'evt_02',
      at: '2026-12-07T10:05:00.000Z',
      action: 'grant.revoked',
      actor: 'bob',
      subject: 'grt_1',
      data: { entitlement: 'prod-db/readonly', principal: 'alice', reason: 'done | a=b \\ "quoted" ]\nnext line' },
    },
    {
      v: 1,
      seq: 3,
      id: 'evt_03',
      at: '2026-12-07T10:06:00.000Z',
      action: 'auth.login',
      actor: 'alice',
      subject: 'ses_1',
      data: { ip: '192.0.2.7', method: 'password' },
    },
    { v: 1, seq: 4, id: 'evt_04', at: '2026-12-07T10:07:00.000Z', action: 'auth.login_failed', actor: 'mallory', data: { ip: '198.51.100.9' } },
    { v: 1, seq: 5, id: 'evt_05', at: '2026-12-07T10:08:00.000Z', action: 'config.reloaded', actor: 'system' },
  ];
  let prev = GENESIS_HASH;
  return events.map((event) => {
    const payload = canonicalJson(event);
    const hash = chainHash(prev, payload);
    const chained = { seq: event.seq, hash, prevHash: prev, payload };
    prev = hash;
    return chained;
  });
}

const checkpoint = { seq: 5, hash: 'ab'.repeat(32), keyId: '0123456789abcdef', signature: 'c2lnbmF0dXJl', at: '2026-12-07T10:09:00.000Z' };

describe('audit export formats (golden files)', () => {
  for (const format of EXPORT_FORMATS) {
    it(`${format} matches its golden file`, () => {
      const lines = [...fixture().map((e) => formatEvent(format, e, options)), formatCheckpoint(format, checkpoint, options)];
      const text = `${lines.join('\n')}\n`;
      const file = join(GOLDEN, `${format}.txt`);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
      expect(text).toBe(readFileSync(file, 'utf8'));
    });
  }

  it('every format carries each event chain seq and hash', () => {
    for (const format of EXPORT_FORMATS) {
      for (const event of fixture()) {
        const line = formatEvent(format, event, options);
        expect(line).toContain(event.hash);
        expect(line).toMatch(new RegExp(`\\b${event.seq}\\b`));
        expect(line).not.toMatch(/[\r\n]/);
      }
    }
  });

  it('OCSF: grant and revoke are User Access Management, sign-in Authentication, type_uid = class_uid*100 + activity_id', () => {
    const [grant, revoke, login, failed, other] = fixture().map((e) => JSON.parse(formatEvent('ocsf', e, options)) as Record<string, unknown>);
    expect(grant).toMatchObject({ class_uid: 3005, activity_id: 1, type_uid: 300501, category_uid: 3, privileges: ['prod-db/readonly'] });
    expect(revoke).toMatchObject({ class_uid: 3005, activity_id: 2, type_uid: 300502 });
    expect(login).toMatchObject({ class_uid: 3002, activity_id: 1, type_uid: 300201, status_id: 1, src_endpoint: { ip: '192.0.2.7' } });
    expect(failed).toMatchObject({ class_uid: 3002, type_uid: 300201, status_id: 2, severity_id: 4 });
    expect(other).toMatchObject({ class_uid: 0, activity_id: 99, type_uid: 99 });
    for (const e of [grant, revoke, login, failed, other]) expect(e!.type_uid).toBe((e!.class_uid as number) * 100 + (e!.activity_id as number));
    expect(grant!.raw_data).toBe(fixture()[0]!.payload);
  });

  it('CEF escapes pipes in the header and = \\ and newlines in extensions', () => {
    const line = formatEvent('cef', fixture()[1]!, options);
    expect(line.startsWith('CEF:0|Lapse|Lapse|0.1.0|grant.revoked|grant.revoked|3|')).toBe(true);
    expect(line).toContain('a\\=b');
    expect(line).toContain('\\\\\\\\');
    expect(line).not.toContain('\n');
  });

  it('RFC 5424: PRI, version 1, MSGID, structured data escaped, payload as MSG', () => {
    const line = formatEvent('syslog', fixture()[3]!, options);
    // authpriv (10) * 8 + warning (4)
    expect(line).toMatch(
      /^<84>1 2026-12-07T10:07:00.000Z lapse-1.example lapse - auth.login_failed \[lapse@32473 seq="4" hash="[0-9a-f]{64}" id="evt_04" actor="mallory"\] \{/,
    );
    const escaped = formatEvent('syslog', { ...fixture()[1]!, payload: fixture()[1]!.payload.replace('"actor":"bob"', '"actor":"b\\"o]b"') }, options);
    expect(escaped).toContain('actor="b\\"o\\]b"');
  });
});
