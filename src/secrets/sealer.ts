import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LapseError } from '../domain/errors.js';

/**
 * Encrypts secrets Lapse must hold for a while (an ephemeral account's password until its holder
 * fetches it, TOTP seeds) with AES-256-GCM. Each sealed value names its key (so old keys can still
 * open what they sealed after a rotation) and is bound to a context string (e.g. the grant id):
 * a value copied into another row does not open there.
 */
export interface Sealer {
  /** First 16 hex digits of sha256(key): names the key in each sealed value. */
  readonly keyId: string;
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

export const ENCRYPTION_KEY_FILE = 'encryption.key';
const VERSION = 'v1';
const IV_BYTES = 12;

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** A 32-byte key from its base64 (or base64url) text, as given in config or the key file. */
export function parseEncryptionKey(text: string, where: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) {
    throw new LapseError('config_invalid', `${where}: must be 32 random bytes in base64 (got ${key.length} bytes)`, {
      where,
      hint: 'Generate one with `openssl rand -base64 32`.',
    });
  }
  return key;
}

export function createSealer(current: Buffer, previous: readonly Buffer[] = []): Sealer {
  const keys = new Map([current, ...previous].map((key) => [keyIdOf(key), key]));
  const keyId = keyIdOf(current);
  return {
    keyId,
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, keyId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
    },
    open(sealed, context) {
      const [version, id, iv, tag, body, extra] = sealed.split('.');
      if (version !== VERSION || !id || !iv || !tag || body === undefined || extra !== undefined) {
        throw new LapseError('internal', 'a sealed secret is malformed');
      }
      const key = keys.get(id);
      if (!key) {
        throw new LapseError('config_invalid', `a sealed secret was sealed with key ${id}, which is not configured`, {
          where: 'secrets.previousEncryptionKeys',
          hint: 'Add the old key to secrets.previousEncryptionKeys after a rotation.',
        });
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        // NB. No detail: the cause is tampering or a value moved to another context.
        throw new LapseError('internal', 'a sealed secret failed its integrity check');
      }
    },
  };
}

/**
 * The key from config (a secret reference, shared by every replica) or, by default, generated once
 * into the data directory (0600), like the audit signing key.
 */
export function loadOrCreateSealer(options: { key?: string | undefined; previousKeys?: readonly string[]; dataDir: string }): Sealer {
  const previous = (options.previousKeys ?? []).map((text, i) => parseEncryptionKey(text, `secrets.previousEncryptionKeys[${i}]`));
  if (options.key) return createSealer(parseEncryptionKey(options.key, 'secrets.encryptionKey'), previous);
  const path = join(options.dataDir, ENCRYPTION_KEY_FILE);
  if (!existsSync(path)) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      // Another process created it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    throw new LapseError('config_invalid', `${path} can be read by other users`, { where: path, hint: `Run \`chmod 600 ${path}\`.` });
  }
  return createSealer(parseEncryptionKey(readFileSync(path, 'utf8'), path), previous);
}
