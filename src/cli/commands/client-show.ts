import { emit, type GlobalOptions } from '../output.js';

/**
 * Human output of what the server sent. Reasons, comments and credentials come from other people
 * and other systems: control characters are replaced so no one can drive the reader's terminal
 * (move the cursor, rewrite earlier lines, set the title) through a request reason.
 */
export function safeText(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '?');
}

/** `emit` for client commands: JSON as received with --json, sanitised text otherwise. */
export function show(options: GlobalOptions, data: unknown, human: () => string): void {
  emit(options, data, () => safeText(human()));
}

/** Progress while waiting (stderr, text mode only: --json prints one document at the end). */
export function progress(options: GlobalOptions, line: string): void {
  if (!options.json) process.stderr.write(`${safeText(line)}\n`);
}

/** A value as one shell word (for the connection hints users copy). */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_.@%+=:,/-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
