import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import sshpk from 'sshpk';

/**
 * Signs OpenSSH user certificates in process: sshpk lays out the certificate, Node's crypto
 * (OpenSSL) makes the Ed25519 signature. The CA key never leaves memory for a temporary file and
 * no subprocess is started per grant. The fields follow PROTOCOL.certkeys;
 * ssh-connector.test.ts reads them back with `ssh-keygen -L` and logs in with them through sshd.
 */
export interface UserCertificateSpec {
  readonly subjectKey: sshpk.Key;
  readonly ca: sshpk.PrivateKey;
  readonly serial: bigint;
  readonly keyId: string;
  readonly principals: readonly string[];
  readonly validAfter: Date;
  readonly validBefore: Date;
  readonly extensions: readonly string[];
  readonly forceCommand: string | null;
  readonly sourceAddress: readonly string[];
}

/**
 * The certificate serial of a grant: the first 64 bits of SHA-256("lapse-ssh-serial:" + grant id).
 * Stable, so a revoke (even after a crash that lost the provision's result) finds the serial from
 * the grant id alone; 0 is skipped because OpenSSH reads it as "no serial" and cannot revoke it.
 */
export function serialForGrant(grantId: string): bigint {
  const serial = createHash('sha256').update(`lapse-ssh-serial:${grantId}`).digest().readBigUInt64BE(0);
  return serial === 0n ? 1n : serial;
}

/**
 * `lapse:<grant id>:<principal id>`, which sshd logs on every login (`Accepted publickey … ID …`).
 * The principal id comes from the identity provider, so anything outside a plain set is
 * percent-encoded: a newline or quote in it cannot forge or break a log line.
 */
export function keyIdForGrant(grantId: string, principalId: string): string {
  const safe = [...principalId]
    .map((c) => (/^[A-Za-z0-9_.@+-]$/.test(c) ? c : encodeURIComponent(c).replace(/[!'()*]/g, (x) => `%${x.charCodeAt(0).toString(16).toUpperCase()}`)))
    .join('');
  return `lapse:${grantId}:${safe.slice(0, 200)}`;
}

export async function signUserCertificate(spec: UserCertificateSpec): Promise<string> {
  const serial = Buffer.alloc(8);
  serial.writeBigUInt64BE(spec.serial);
  const critical: [string, Buffer][] = [];
  if (spec.forceCommand !== null) critical.push(['force-command', sshString(spec.forceCommand)]);
  if (spec.sourceAddress.length > 0) critical.push(['source-address', sshString(spec.sourceAddress.join(','))]);
  // NB. OpenSSH expects both lists in lexical order of name (PROTOCOL.certkeys); flags carry no data.
  const exts = [
    ...critical.sort(([a], [b]) => a.localeCompare(b, 'en')).map(([name, data]) => ({ critical: true, name, data })),
    ...[...spec.extensions].sort().map((name) => ({ critical: false, name, data: Buffer.alloc(0) })),
  ];
  const certificate = new sshpk.Certificate({
    subjects: spec.principals.map((p) => sshpk.Identity.forUser(p)),
    // NB. OpenSSH certificates name no issuer, only its key; sshpk wants an identity anyway.
    issuer: sshpk.Identity.forHost('**'),
    subjectKey: spec.subjectKey,
    issuerKey: spec.ca.toPublic(),
    // NB. @types/sshpk wants both formats' finished signatures here; sshpk itself takes the
    // unsigned OpenSSH fields (key id, options, extensions) and signWith fills in the rest.
    signatures: { openssh: { keyId: spec.keyId, exts } } as unknown as sshpk.CertificateOptions['signatures'],
    serial,
    validFrom: spec.validAfter,
    validUntil: spec.validBefore,
    purposes: [],
  });
  // NB. Not certificate.signWith(): that also signs an X.509 form nobody uses, and sshpk's Ed25519
  // is JavaScript (tweetnacl), about 5x slower than OpenSSL's.
  const openssh = sshpk.Certificate.formats.openssh as unknown as sshpk.Format.OpenSshCert;
  const key = nativeKey(spec.ca);
  await new Promise<void>((resolve, reject) => {
    openssh.signAsync(
      certificate,
      (blob, done) => done(undefined, sshpk.parseSignature(sign(null, blob, key), 'ed25519', 'raw')),
      (error) => (error ? reject(error) : resolve()),
    );
  });
  return certificate.toString('openssh');
}

const nativeKeys = new WeakMap<sshpk.PrivateKey, KeyObject>();

function nativeKey(ca: sshpk.PrivateKey): KeyObject {
  let key = nativeKeys.get(ca);
  if (!key) {
    // NB. sshpk's own PKCS#8 output for Ed25519 is a form OpenSSL cannot decode; the key's two
    // parts (seed k, public A) map directly onto a JWK.
    const part = (name: string) => (ca.part as unknown as Record<string, { data: Buffer }>)[name]!.data.toString('base64url');
    key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: part('k'), x: part('A') }, format: 'jwk' });
    nativeKeys.set(ca, key);
  }
  return key;
}

function sshString(value: string): Buffer {
  const data = Buffer.from(value, 'utf8');
  const out = Buffer.alloc(4 + data.length);
  out.writeUInt32BE(data.length);
  data.copy(out, 4);
  return out;
}
