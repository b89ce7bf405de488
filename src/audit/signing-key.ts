import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LapseError } from '../domain/errors.js';

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** First 16 hex digits of sha256(public key, DER): names the key in each checkpoint. */
  readonly keyId: string;
}

export const PRIVATE_KEY_FILE = 'audit-signing-key.pem';
export const PUBLIC_KEY_FILE = 'audit-signing-key.pub.pem';

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/**
 * The Ed25519 key that signs checkpoints: from config (a secret reference) or, by default,
 * generated once into the data directory (0600) with its public half beside it for verifiers.
 */
export function loadOrCreateSigningKey(options: { pem?: string | undefined; dataDir: string }): SigningKey {
  const privateKey = options.pem ? parsePrivateKey(options.pem, 'audit.signingKey') : loadOrGenerate(options.dataDir);
  const publicKey = createPublicKey(privateKey);
  const publicPath = join(options.dataDir, PUBLIC_KEY_FILE);
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  // Kept in step with the private key, so `lapse audit verify` finds the current public key.
  if (!existsSync(publicPath) || readFileSync(publicPath, 'utf8') !== publicPem) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(publicPath, publicPem, { mode: 0o644 });
  }
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

function loadOrGenerate(dataDir: string): KeyObject {
  const path = join(dataDir, PRIVATE_KEY_FILE);
  if (!existsSync(path)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    try {
      // 'wx': never overwrite a key that already signed checkpoints.
      writeFileSync(path, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      // Another process sharing the data directory generated it first: use that one.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  // NB. Like OpenSSH, refuse a private key others can read rather than sign with a key that may
  // have leaked. Windows has no such mode bits.
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    throw new LapseError('config_invalid', 'the audit signing key is readable by other users', {
      where: path,
      hint: `Run \`chmod 600 ${path}\`, and replace the key if it may have been copied.`,
    });
  }
  return parsePrivateKey(readFileSync(path, 'utf8'), path);
}

function parsePrivateKey(pem: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new LapseError('config_invalid', `the audit signing key is not a readable private key: ${(error as Error).message}`, {
      where,
      hint: 'Give a PKCS#8 PEM Ed25519 key, e.g. from `openssl genpkey -algorithm ed25519`.',
    });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new LapseError('config_invalid', `the audit signing key must be Ed25519, not ${key.asymmetricKeyType}`, {
      where,
      hint: 'Generate one with `openssl genpkey -algorithm ed25519`.',
    });
  }
  return key;
}

/**
 * The checkpoint public keys a verifier trusts: one source for the API (and so the portal), the CLI
 * and the demo, so they all give the same verdict. The files named (`--public-key`, repeated across
 * a rotation) when there are any; otherwise the public half of `audit.signingKey` when the config
 * names one, and the data directory's public key file, which `lapse serve` keeps in step with the
 * key it signs with (also the generated default).
 */
export function trustedCheckpointKeys(options: { files?: readonly string[]; signingKeyPem?: string | undefined; dataDir?: string | undefined }): {
  keys: KeyObject[];
  sources: string[];
} {
  if (options.files && options.files.length > 0) return { keys: options.files.map(readPublicKey), sources: [...options.files] };
  const found: { key: KeyObject; source: string }[] = [];
  if (options.signingKeyPem) found.push({ key: createPublicKey(parsePrivateKey(options.signingKeyPem, 'audit.signingKey')), source: 'audit.signingKey' });
  const file = options.dataDir === undefined ? undefined : join(options.dataDir, PUBLIC_KEY_FILE);
  if (file && existsSync(file)) found.push({ key: readPublicKey(file), source: file });
  const unique = found.filter((item, i) => found.findIndex((other) => keyIdOf(other.key) === keyIdOf(item.key)) === i);
  return { keys: unique.map((item) => item.key), sources: unique.map((item) => item.source) };
}

/** A verifier's public key (PEM, SPKI), e.g. the audit-signing-key.pub.pem `lapse serve` writes. */
export function readPublicKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new LapseError('not_found', `cannot read the audit public key: ${(error as Error).message}`, {
      where: path,
      hint: `Pass --public-key with the checkpoint public key (${PUBLIC_KEY_FILE} in the server's data directory).`,
    });
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new LapseError('validation_failed', `not a PEM public key: ${(error as Error).message}`, { where: path });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new LapseError('validation_failed', `the audit public key must be Ed25519, not ${key.asymmetricKeyType}`, { where: path });
  }
  return key;
}
