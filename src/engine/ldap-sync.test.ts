import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LdapSyncConfig } from '../config/types.js';
import { readLdapDirectory } from '../integrations/index.js';
import { getGrant, getRequest } from '../store/index.js';
import { startEngine, TEST_CONFIG, waitFor, type TestEngine } from '../../test/support/engine.js';
import { SLAPD_SUFFIX, startSlapd, type Slapd } from '../../test/support/slapd.js';
import { offline } from '../../test/support/environment.js';
import { describeEachStore } from '../../test/support/stores.js';

const PEOPLE = `dn: ou=people,${SLAPD_SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${SLAPD_SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: uid=kim,ou=people,${SLAPD_SUFFIX}
objectClass: inetOrgPerson
uid: kim
cn: Kim Park
sn: Park
mail: kim@example.com

dn: uid=lee,ou=people,${SLAPD_SUFFIX}
objectClass: inetOrgPerson
uid: lee
cn: Lee Chan
sn: Chan

dn: uid=Bad Name,ou=people,${SLAPD_SUFFIX}
objectClass: inetOrgPerson
uid: Bad Name
cn: Bad
sn: Name

dn: cn=sre,ou=groups,${SLAPD_SUFFIX}
objectClass: groupOfNames
cn: sre
member: uid=kim,ou=people,${SLAPD_SUFFIX}

dn: cn=leads,ou=groups,${SLAPD_SUFFIX}
objectClass: groupOfNames
cn: leads
member: uid=lee,ou=people,${SLAPD_SUFFIX}
member: cn=sre,ou=groups,${SLAPD_SUFFIX}
`;

const KIM = `dn: uid=kim,ou=people,${SLAPD_SUFFIX}
objectClass: inetOrgPerson
uid: kim
cn: Kim Park
sn: Park
`;

/** The LDAP sync against a real private slapd: StartTLS with the test CA verified, nested groups, deprovisioning. */
// A real slapd is a service like the others: the offline suite (LAPSE_TEST_OFFLINE=1) leaves it out.
describe.skipIf(offline())('LDAP sync needs slapd (apt-get install slapd ldap-utils, as .ci/run does)', () => {
  describeEachStore('LDAP sync (real slapd)', ({ store }) => {
    let slapd: Slapd;
    let t: TestEngine;
    let settings: LdapSyncConfig;
    beforeAll(async () => {
      slapd = await startSlapd();
      slapd.add(PEOPLE);
      const dir = mkdtempSync(join(tmpdir(), 'lapse-ldap-'));
      writeFileSync(join(dir, 'bind-password'), slapd.password);
      const yaml = `${TEST_CONFIG}
identity:
  ldap:
    url: ${slapd.ldapUrl}
    startTls: true
    tls: { ca: "\${file:${slapd.caPath}}" }
    bindDn: ${slapd.adminDn}
    bindPassword: "\${file:${join(dir, 'bind-password')}}"
    interval: 1h
    timeout: 5s
    users: { baseDn: "ou=people,${SLAPD_SUFFIX}", disabledFilter: "(employeeType=disabled)" }
    groups: { baseDn: "ou=groups,${SLAPD_SUFFIX}" }
`;
      t = await startEngine(store(), { yaml });
      settings = t.engine.config.identity.ldap!;
    });
    afterAll(async () => {
      await t?.stop();
      await slapd?.close();
    });

    const groupsOf = async (name: string) =>
      (await store().db.selectFrom('users').select(['groups', 'disabled_at']).where('name', '=', name).executeTakeFirst()) ?? null;

    it('the scheduled sync brings people and nested groups over StartTLS, skipping names Lapse cannot use', async () => {
      const synced = await waitFor(
        async () =>
          (await store().db.selectFrom('audit_events').select('payload').execute()).map(
            (r) => JSON.parse(r.payload) as { action: string; actor: string; data: { skipped: unknown[] } },
          ),
        (events) => events.some((e) => e.action === 'identity.ldap_synced' && e.actor === 'ldap:schedule'),
        20_000,
      );
      const report = synced.find((e) => e.action === 'identity.ldap_synced')!;
      expect(report.data.skipped).toEqual([expect.objectContaining({ dn: `uid=bad name,ou=people,${SLAPD_SUFFIX}` })]);
      expect(await groupsOf('kim')).toEqual({ groups: ['leads', 'sre'], disabled_at: null });
      expect(await groupsOf('lee')).toEqual({ groups: ['leads'], disabled_at: null });
      // Running it again changes nothing.
      expect(await t.engine.syncLdap()).toMatchObject({ people: 2, created: 0, updated: 0, deprovisioned: 0 });
    });

    it('deprovisions people who disappear or are disabled in the directory, and enables them when they return', async () => {
      const kim = { id: 'kim', kind: 'user' as const, groups: (await groupsOf('kim'))!.groups };
      const { request } = await t.engine.submit({ principal: kim, target: 'prod-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'ldap test' });
      const grantId = (await getRequest(store().db, request.id))!.grantId!;
      await waitFor(
        () => getGrant(store().db, grantId),
        (g) => g?.status === 'active',
      );

      slapd.remove(`uid=kim,ou=people,${SLAPD_SUFFIX}`);
      slapd.modify(`dn: uid=lee,ou=people,${SLAPD_SUFFIX}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n`);
      expect(await t.engine.syncLdap()).toMatchObject({ people: 1, deprovisioned: 2 });
      expect((await groupsOf('kim'))!.disabled_at).not.toBeNull();
      expect((await groupsOf('lee'))!.disabled_at).not.toBeNull();
      await waitFor(
        () => getGrant(store().db, grantId),
        (g) => g?.status === 'revoked',
      );
      expect(t.noop.hasAccess('prod-db', 'readonly', 'kim')).toBe(false);
      // Kim left every group with the entry (sre no longer lists a member that does not exist).
      const reasons = (
        await store().db.selectFrom('users').select(['name', 'disabled_reason']).where('name', 'in', ['kim', 'lee']).orderBy('name').execute()
      ).map((r) => r.disabled_reason);
      expect(reasons).toEqual(['gone from LDAP', 'disabled in LDAP']);

      slapd.add(KIM);
      expect(await t.engine.syncLdap()).toMatchObject({ deprovisioned: 0 });
      expect((await groupsOf('kim'))!.disabled_at).toBeNull();
      expect((await getGrant(store().db, grantId))!.status).toBe('revoked');
    });

    it('refuses a read that finds nobody instead of deprovisioning everyone', async () => {
      await expect(t.engine.syncLdap({ read: async () => ({ people: [], groups: [], skipped: [] }) })).rejects.toThrow('returned nobody');
      expect((await groupsOf('kim'))!.disabled_at).toBeNull();
    });

    it('verifies TLS: LDAPS with the right CA works; another CA, or a wrong password, fails without saying the password', async () => {
      const ldaps = { ...settings, url: slapd.ldapsUrl, startTls: false };
      expect((await readLdapDirectory(ldaps)).people.map((p) => p.name).sort()).toEqual(['kim', 'lee']);
      const otherCa = readFileSync(slapd.otherCaPath, 'utf8');
      await expect(readLdapDirectory({ ...ldaps, ca: otherCa })).rejects.toMatchObject({ code: 'idp_unavailable' });
      await expect(readLdapDirectory({ ...settings, ca: otherCa })).rejects.toMatchObject({ code: 'idp_unavailable' });
      const wrong = await readLdapDirectory({ ...settings, bindPassword: 'not-the-password-xyz' }).catch((e: Error) => e);
      expect(wrong).toMatchObject({ code: 'idp_unavailable' });
      expect(String((wrong as Error).message)).not.toContain('not-the-password-xyz');
    });
  });
});
