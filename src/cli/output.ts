import { EXIT, LapseError, isLapseError } from '../domain/errors.js';

/** Options every command understands. */
export interface GlobalOptions {
  json?: boolean;
}

/**
 * Prints a command's result: the JSON document with --json (for scripts), or the human text.
 * Commands return data; they never print directly, so both forms always say the same thing.
 */
export function emit(options: GlobalOptions, data: unknown, human: () => string): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  } else {
    const text = human();
    if (text.length > 0) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Reports an error on stderr (JSON with --json) and returns the exit code it maps to. */
export function reportError(options: GlobalOptions, error: unknown): number {
  const lapseError = isLapseError(error)
    ? error
    : new LapseError('internal', error instanceof Error ? error.message : String(error), {
        hint: 'This is a bug or an environment problem; run with LAPSE_DEBUG=1 for the stack trace.',
      });
  if (options.json) {
    process.stderr.write(`${JSON.stringify({ error: { code: lapseError.code, message: lapseError.message, ...lapseError.details } })}\n`);
  } else {
    process.stderr.write(`lapse: ${lapseError.describe()}\n`);
    const problems = lapseError.details.problems;
    if (Array.isArray(problems)) {
      for (const problem of problems) process.stderr.write(`  - ${String(problem)}\n`);
    }
  }
  if (process.env.LAPSE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  return lapseError.exitCode;
}

/** Wraps a command action: runs it, maps errors to exit codes, sets process.exitCode. */
export function action<A extends unknown[]>(run: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    // commander passes (args..., options, command); the command's merged options hold --json.
    const command = args[args.length - 1] as { optsWithGlobals?: () => GlobalOptions } | undefined;
    const options = command?.optsWithGlobals?.() ?? {};
    try {
      const code = await run(...args);
      process.exitCode = code ?? EXIT.ok;
    } catch (error) {
      process.exitCode = reportError(options, error);
    }
  };
}
