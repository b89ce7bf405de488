import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LapseError } from '../domain/errors.js';

/**
 * Encrypts secrets Lapse must hold for a while (an ephemeral account's password until its holder
 * fetches it, TOTP seeds, vaulted account passwords) with AES-256-GCM, as an envelope: each value
 * gets its own random data key, and only that data key is encrypted with the key-encryption key
 * (KEK, `secrets.encryptionKey`). Each sealed value names its KEK (so old keys can still open what
 * they sealed after a rotation) and is bound to a context string (e.g. the grant id): a value
 * copied into another row does not open there.
 * NB. Why an envelope: a key rotation re-wraps 32 bytes per secret (`rewrap`) instead of
 * re-encrypting every secret, and no single key encrypts more than one value with random nonces.
 */
export interface Sealer {
  /** First 16 hex digits of sha256(KEK): names the key in each sealed value. */
  readonly keyId: string;
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
  /**
   * The same secret with its data key wrapped by the current KEK (the secret itself is not
   * re-encrypted); a value from before envelopes (v1) is sealed afresh. Same context rules as open.
   */
  rewrap(sealed: string, context: string): string;
  /** The id of the KEK a sealed value needs (without opening it). */
  keyIdOf(sealed: string): string;
}

export const ENCRYPTION_KEY_FILE = 'encryption.key';
/** v1: the value encrypted with the KEK directly (still opened); v2: an envelope. */
const DIRECT = 'v1';
const ENVELOPE = 'v2';
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

function encrypt(key: Buffer, plaintext: Buffer, aad: string): string[] {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')];
}

function decrypt(key: Buffer, [iv, tag, body]: readonly string[], aad: string): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag!, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body!, 'base64url')), decipher.final()]);
  } catch {
    // NB. No detail: the cause is tampering or a value moved to another context.
    throw new LapseError('internal', 'a sealed secret failed its integrity check');
  }
}

/** The data key is bound to the value's context too: a wrapped key moved to another value does not open. */
const wrapContext = (context: string) => `lapse-data-key:${context}`;

export function createSealer(current: Buffer, previous: readonly Buffer[] = []): Sealer {
  const keys = new Map([current, ...previous].map((key) => [keyIdOf(key), key]));
  const keyId = keyIdOf(current);
  const parse = (sealed: string) => {
    const parts = sealed.split('.');
    const [version, id] = parts;
    const size = version === DIRECT ? 5 : version === ENVELOPE ? 8 : 0;
    if (parts.length !== size || !id || parts.slice(2, -1).some((part) => part.length === 0)) {
      throw new LapseError('internal', 'a sealed secret is malformed');
    }
    return { version, id, parts: parts.slice(2) };
  };
  const kek = (id: string) => {
    const key = keys.get(id);
    if (!key) {
      throw new LapseError('config_invalid', `a sealed secret was sealed with key ${id}, which is not configured`, {
        where: 'secrets.previousEncryptionKeys',
        hint: 'Add the old key to secrets.previousEncryptionKeys after a rotation.',
      });
    }
    return key;
  };
  const wrap = (dataKey: Buffer, context: string) => encrypt(current, dataKey, wrapContext(context));
  const seal = (plaintext: string, context: string) => {
    const dataKey = randomBytes(32);
    return [ENVELOPE, keyId, ...wrap(dataKey, context), ...encrypt(dataKey, Buffer.from(plaintext, 'utf8'), context)].join('.');
  };
  const open = (sealed: string, context: string) => {
    const { version, id, parts } = parse(sealed);
    if (version === DIRECT) return decrypt(kek(id), parts, context).toString('utf8');
    const dataKey = decrypt(kek(id), parts.slice(0, 3), wrapContext(context));
    return decrypt(dataKey, parts.slice(3), context).toString('utf8');
  };
  return {
    keyId,
    seal,
    open,
    rewrap(sealed, context) {
      const { version, id, parts } = parse(sealed);
      if (version === DIRECT) return seal(open(sealed, context), context);
      const dataKey = decrypt(kek(id), parts.slice(0, 3), wrapContext(context));
      // Proves the body still belongs to this context before vouching for it under the new key.
      decrypt(dataKey, parts.slice(3), context);
      return [ENVELOPE, keyId, ...wrap(dataKey, context), ...parts.slice(3)].join('.');
    },
    keyIdOf: (sealed) => parse(sealed).id,
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
