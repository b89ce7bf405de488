import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throw-away certificate authority for the Azure fakes, made with the system's openssl: a CA,
 * a server certificate for 127.0.0.1 and localhost signed by it, and a self-signed client
 * certificate (with its private key) for certificate sign-in. The Azure pipeline refuses to send a
 * bearer token over plain http, so the fakes must speak HTTPS and the connector must trust this
 * CA through `settings.tls.ca` — which is exactly the path a private CA takes in production.
 */
export interface TestPki {
  readonly caPem: string;
  readonly serverKeyPem: string;
  readonly serverCertPem: string;
  /** Private key + certificate in one PEM, as `clientCertificate` takes it. */
  readonly clientPem: string;
  readonly clientCertPem: string;
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'lapse-azure-pki-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    run(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=Lapse test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    run(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'server.ext',
    );
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.pem', '-days', '2', '-subj', '/CN=lapse-test-app');
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    return {
      caPem: read('ca.pem'),
      serverKeyPem: read('server.key'),
      serverCertPem: read('server.pem'),
      clientPem: read('client.key') + read('client.pem'),
      clientCertPem: read('client.pem'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
