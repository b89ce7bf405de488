import { createInterface } from 'node:readline/promises';

/**
 * Questions asked on the terminal. Only when both ends are a terminal: a script piping into lapse
 * never blocks on a prompt it cannot see (it passes --mfa-code or --yes instead).
 */
export function interactive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** The code from the user's authenticator app, or undefined when there is no one to ask. */
export async function askForTotpCode(): Promise<string | undefined> {
  if (!interactive()) return undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const code = await ask('This needs a second factor. Code from your authenticator app: ');
    if (/^\d{6,8}$/.test(code)) return code;
    process.stderr.write('That is not a 6-digit code.\n');
  }
  return undefined;
}

/** Asks the user to type `word` to go on (break-glass). */
export async function confirm(question: string, word: string): Promise<boolean> {
  return (await ask(`${question}\nType "${word}" to continue: `)) === word;
}
