import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** First 16 hex digits of sha256(public key, DER): names the key in each checkpoint. */
  readonly keyId: string;
}

export const PRIVATE_KEY_FILE = 'audit-signing-key.pem';
export const PUBLIC_KEY_FILE = 'audit-signing-key.pub.pem';

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/**
 * The Ed25519 key that signs checkpoints: from config (a secret reference) or, by default,
 * generated once into the data directory (0600) with its public half beside it for verifiers.
 */
export function loadOrCreateSigningKey(options: { pem?: string | undefined; dataDir: string }): SigningKey {
  let privateKey: KeyObject;
  if (options.pem) {
    privateKey = createPrivateKey(options.pem);
  } else {
    const path = join(options.dataDir, PRIVATE_KEY_FILE);
    if (existsSync(path)) {
      privateKey = createPrivateKey(readFileSync(path, 'utf8'));
    } else {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      privateKey = generateKeyPairSync('ed25519').privateKey;
      writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    }
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`the audit signing key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  const publicPath = join(options.dataDir, PUBLIC_KEY_FILE);
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  if (!existsSync(publicPath) || readFileSync(publicPath, 'utf8') !== publicPem) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(publicPath, publicPem, { mode: 0o644 });
  }
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

export function readPublicKey(path: string): KeyObject {
  return createPublicKey(readFileSync(path, 'utf8'));
}
