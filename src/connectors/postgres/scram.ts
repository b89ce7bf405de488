import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677, the format of
 * `pg_authid.rolpassword`). Lapse sends this instead of the password, as `psql \password` does,
 * so the plain password never reaches the server's statement log or `pg_stat_activity`.
 * NB. SASLprep is the identity for the ASCII passwords Lapse generates.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Whether `verifier` (as stored by the server) accepts `password`. */
export function scramAccepts(verifier: string, password: string): boolean {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(verifier);
  if (!match) return false;
  return scramVerifier(password, Buffer.from(match[2]!, 'base64'), Number(match[1])) === verifier;
}
