import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A private OpenLDAP `slapd` (Debian's) for tests: its own cn=config made here, a test CA and a
 * server certificate for 127.0.0.1, listening on ldap:// (StartTLS offered) and ldaps:// on free
 * ports. Suffix dc=example,dc=com; the root DN cn=admin,dc=example,dc=com with `password`.
 */
export interface Slapd {
  readonly ldapUrl: string;
  readonly ldapsUrl: string;
  readonly caPath: string;
  /** A CA that did not sign the server's certificate (verification must fail with it). */
  readonly otherCaPath: string;
  readonly adminDn: string;
  readonly password: string;
  add(ldif: string): void;
  modify(ldif: string): void;
  remove(...dns: string[]): void;
  close(): Promise<void>;
}

export const SLAPD_SUFFIX = 'dc=example,dc=com';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`slapd did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function makeCertificates(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=lapse test LDAP CA');
  run('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=some other CA');
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext');
}

export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'lapse-slapd-'));
  makeCertificates(dir);
  const [ldapPort, ldapsPort] = [await freePort(), await freePort()];
  const password = 'password';
  const config = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${dir}/slapd.pid
olcTLSCACertificateFile: ${dir}/ca.pem
olcTLSCertificateFile: ${dir}/server.pem
olcTLSCertificateKeyFile: ${dir}/server.key

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${SLAPD_SUFFIX}
olcRootDN: cn=admin,${SLAPD_SUFFIX}
olcRootPW: ${password}
olcDbDirectory: ${dir}/db
olcDbMaxSize: 10485760
olcAccess: {0}to * by anonymous auth by users read
`;
  writeFileSync(join(dir, 'config.ldif'), config);
  execFileSync('mkdir', ['-p', join(dir, 'conf'), join(dir, 'db')]);
  execFileSync('/usr/sbin/slapadd', ['-n0', '-F', join(dir, 'conf'), '-l', join(dir, 'config.ldif')], { stdio: 'pipe' });
  const child: ChildProcess = spawn(
    '/usr/sbin/slapd',
    ['-h', `ldap://127.0.0.1:${ldapPort}/ ldaps://127.0.0.1:${ldapsPort}/`, '-F', join(dir, 'conf'), '-d', '0'],
    { stdio: 'ignore' },
  );
  await waitForPort(ldapPort, 10_000);
  await waitForPort(ldapsPort, 10_000);
  const ldapUrl = `ldap://127.0.0.1:${ldapPort}`;
  const adminDn = `cn=admin,${SLAPD_SUFFIX}`;
  const tool = (command: string, input: string, ...args: string[]) =>
    execFileSync(command, ['-x', '-H', ldapUrl, '-D', adminDn, '-w', password, ...args], { input, stdio: ['pipe', 'pipe', 'pipe'] });
  tool('ldapadd', `dn: ${SLAPD_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n`);
  return {
    ldapUrl,
    ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
    caPath: join(dir, 'ca.pem'),
    otherCaPath: join(dir, 'other-ca.pem'),
    adminDn,
    password,
    add: (ldif) => void tool('ldapadd', ldif),
    modify: (ldif) => void tool('ldapmodify', ldif),
    remove: (...dns) => void tool('ldapdelete', '', ...dns),
    close: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
