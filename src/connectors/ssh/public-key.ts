import sshpk from 'sshpk';

/**
 * The requester's `sshPublicKey` parameter: one OpenSSH public key line (`type base64 [comment]`)
 * of a type we sign. The line must be exactly what sshpk re-encodes from the parsed key, so no
 * authorized_keys options, certificates, trailing data or second line can ride along.
 */
export const MAX_PUBLIC_KEY_LINE = 4096;
const MIN_RSA_BITS = 3072;
const MAX_RSA_BITS = 16384;
const LINE = /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) ([A-Za-z0-9+/]+={0,2})(?: [\x20-\x7e]{0,256})?$/;

export type PublicKeyCheck = { readonly ok: true; readonly key: sshpk.Key } | { readonly ok: false; readonly problem: string };

export function parseRequesterKey(value: unknown): PublicKeyCheck {
  if (typeof value !== 'string' || value.trim() === '') {
    return { ok: false, problem: 'required: paste your OpenSSH public key line (e.g. the contents of ~/.ssh/id_ed25519.pub)' };
  }
  if (value.length > MAX_PUBLIC_KEY_LINE) return { ok: false, problem: `longer than ${MAX_PUBLIC_KEY_LINE} characters; send one public key line` };
  // NB. One trailing newline is what `cat key.pub` gives; anything more is a second line.
  const line = value.replace(/\r?\n$/, '');
  if (/[\r\n\0]/.test(line)) return { ok: false, problem: 'must be a single line holding one public key' };
  const match = LINE.exec(line);
  if (!match) {
    return {
      ok: false,
      problem:
        'must be "<type> <base64> [comment]" with type ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa, without authorized_keys options; certificates and FIDO keys are not accepted',
    };
  }
  const [, type, base64] = match as unknown as [string, string, string];
  let key: sshpk.Key;
  try {
    key = sshpk.parseKey(`${type} ${base64}`, 'ssh');
  } catch {
    return { ok: false, problem: 'is not a valid OpenSSH public key (the base64 part does not decode to a key)' };
  }
  const reencoded = key.toString('ssh').split(' ');
  if (reencoded[0] !== type || reencoded[1] !== base64) {
    return { ok: false, problem: `the key inside is not the ${type} key the line announces` };
  }
  if (key.type === 'rsa' && (key.size < MIN_RSA_BITS || key.size > MAX_RSA_BITS)) {
    return {
      ok: false,
      problem: `RSA keys must have ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits (this one has ${key.size}); an Ed25519 key is better: ssh-keygen -t ed25519`,
    };
  }
  return { ok: true, key };
}
