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

/**
 * Reads a line from the terminal without echoing it (a password). Undefined when there is no
 * terminal to ask on. Ctrl-C aborts.
 */
export async function askHidden(question: string, maxLength = 1024): Promise<string | undefined> {
  if (!interactive()) return undefined;
  process.stderr.write(question);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  try {
    let value = '';
    for await (const chunk of stdin) {
      for (const character of (chunk as Buffer).toString('utf8')) {
        if (character === '\u0003') throw new Error('interrupted');
        if (character === '\r' || character === '\n') return value;
        if (character === '\u007f' || character === '\b') value = value.slice(0, -1);
        else if (value.length < maxLength) value += character;
      }
    }
    return value;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}
