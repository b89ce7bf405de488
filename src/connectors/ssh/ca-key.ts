import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import sshpk from 'sshpk';
import { LapseError } from '../../domain/errors.js';
import type { SshTargetSettings } from './settings.js';

/**
 * The target's certificate authority: an Ed25519 key from a secret reference (`caPrivateKey`) or
 * from a file Lapse generates on first use (`caKeyPath`). Next to a generated key Lapse writes
 * `<caKeyPath>.pub`, the line sshd's `TrustedUserCAKeys` file needs.
 */
export interface CertificateAuthority {
  readonly privateKey: sshpk.PrivateKey;
  /** `ssh-ed25519 AAAA… lapse-ca:<target>`: what goes into TrustedUserCAKeys. */
  readonly publicKeyLine: string;
}

const MAX_KEY_FILE_BYTES = 64 * 1024;

export async function loadCertificateAuthority(targetName: string, settings: SshTargetSettings): Promise<CertificateAuthority> {
  if (settings.caPrivateKey !== null) {
    return authority(targetName, parse(settings.caPrivateKey, targetName, `targets.${targetName}.settings.caPrivateKey`));
  }
  const path = settings.caKeyPath as string;
  const where = `targets.${targetName}.settings.caKeyPath`;
  let text = await readKeyFile(path, where);
  if (text === null) text = await generateKeyFile(path, targetName, where);
  const ca = authority(targetName, parse(text, targetName, where));
  await writePublicKeyIfAbsent(`${path}.pub`, ca.publicKeyLine);
  return ca;
}

function authority(targetName: string, privateKey: sshpk.PrivateKey): CertificateAuthority {
  const publicKeyLine = `${privateKey.toPublic().toString('ssh').split(' ').slice(0, 2).join(' ')} lapse-ca:${targetName}`;
  return { privateKey, publicKeyLine };
}

function parse(text: string, targetName: string, where: string): sshpk.PrivateKey {
  let key: sshpk.PrivateKey;
  try {
    key = sshpk.parsePrivateKey(text, 'auto');
  } catch (error) {
    const encrypted = error instanceof Error && error.name === 'KeyEncryptedError';
    throw new LapseError('connector_failed', `the CA key of ssh target ${targetName} cannot be read${encrypted ? ': it is encrypted' : ''}`, {
      where,
      hint: encrypted
        ? 'Lapse needs the key without a passphrase; keep it in a secret store and pass it by ${file:} or ${env:}.'
        : 'Give an Ed25519 private key in OpenSSH ("-----BEGIN OPENSSH PRIVATE KEY-----") or PKCS#8 PEM form, e.g. made by ssh-keygen -t ed25519.',
    });
  }
  if (key.type !== 'ed25519') {
    throw new LapseError('connector_failed', `the CA key of ssh target ${targetName} is ${key.type}, not Ed25519`, {
      where,
      hint: 'Make one with: ssh-keygen -t ed25519 -N "" -f lapse-ca',
    });
  }
  return key;
}

async function readKeyFile(path: string, where: string): Promise<string | null> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LapseError('connector_failed', `cannot read the ssh CA key file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
      where,
      hint: 'Check the path and that Lapse may read it.',
    });
  }
  // NB. A CA key others could read may already have been copied: anyone holding it can sign
  // certificates for any principal. Refuse rather than use it.
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    throw new LapseError('connector_failed', `the ssh CA key file ${path} can be read by other users (mode ${(info.mode & 0o777).toString(8)})`, {
      where,
      hint: `Run chmod 600 ${path}; if others may have read it, replace the key and the TrustedUserCAKeys line on every server.`,
    });
  }
  if (info.size > MAX_KEY_FILE_BYTES)
    throw new LapseError('connector_failed', `the ssh CA key file ${path} is larger than 64 KiB`, { where, hint: 'Point caKeyPath at the private key file.' });
  return readFile(path, 'utf8');
}

/**
 * Writes a fresh key to a private temporary file and hard-links it into place: the link fails if
 * another replica got there first (then theirs is used), and nobody ever reads a half-written key.
 */
async function generateKeyFile(path: string, targetName: string, where: string): Promise<string> {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const text = sshpk.parsePrivateKey(pem, 'pkcs8').toString('openssh');
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await link(temporary, path);
    return text;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readKeyFile(path, where)) as string;
    throw new LapseError(
      'connector_failed',
      `cannot create the ssh CA key of target ${targetName} at ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        where,
        hint: 'Lapse needs write access to the directory of caKeyPath, or give an existing key via caPrivateKey.',
      },
    );
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function writePublicKeyIfAbsent(path: string, line: string): Promise<void> {
  try {
    await writeFile(path, `${line}\n`, { mode: 0o644, flag: 'wx' });
  } catch (error) {
    // NB. Present already (ours from an earlier start, or an admin's copy): left as it is. A
    // read-only directory only loses this convenience copy; the key itself loaded fine.
    if (!['EEXIST', 'EACCES', 'EROFS', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  }
}
