import { LapseError } from '../domain/errors.js';

/**
 * Reads a secret from standard input (`--password-stdin`, `--with-token`), so it never appears in
 * the process list or shell history. One trailing newline is dropped; input is bounded.
 */
export async function readSecretFromStdin(what: string, maxBytes = 4096): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > maxBytes) throw new LapseError('validation_failed', `the ${what} on standard input is longer than ${maxBytes} bytes`, { where: 'stdin' });
    chunks.push(buffer);
  }
  const value = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (value.length === 0)
    throw new LapseError('validation_failed', `no ${what} on standard input`, {
      where: 'stdin',
      hint: `Pipe it in, e.g. \`printf '%s' "$SECRET" | lapse ...\`.`,
    });
  return value;
}
