import { z } from 'zod';

// Control characters (C0, DEL, C1) and lone surrogates, which are not text at all; in multi-line
// text tab and newline are fine. NB. PostgreSQL refuses NUL in text, and the rest can rewrite what
// a terminal or log viewer shows (ESC sequences, carriage returns over a line).
const ONE_LINE = /[\p{Cc}\p{Cs}]/u;
const MULTI_LINE = /(?![\t\n])[\p{Cc}\p{Cs}]/u;

/** What is wrong with free text that holds a control character, or undefined when it is fine. */
export function controlCharacterProblem(text: string, options: { readonly multiline?: boolean } = {}): string | undefined {
  const match = (options.multiline ? MULTI_LINE : ONE_LINE).exec(text);
  if (!match) return undefined;
  const code = match[0].charCodeAt(0);
  const at = `at position ${match.index + 1}`;
  if (code >= 0xd800 && code <= 0xdfff) return `contains an invalid character (a lone UTF-16 surrogate) ${at}; send valid Unicode text`;
  const allowed = options.multiline ? 'remove it (only tab and newline are allowed)' : 'remove it';
  return `contains a control character (U+${code.toString(16).toUpperCase().padStart(4, '0')}) ${at}; ${allowed}`;
}

/**
 * Free text from outside (API, CLI, config): bounded (a bare z.string() accepts 40 MB) and free of
 * control characters, with tab and newline allowed only where multi-line text is meant (a reason,
 * a comment, a description). The one schema every door uses for names, reasons and filters.
 */
export function boundedText(max: number, options: { readonly multiline?: boolean } = {}) {
  return z
    .string()
    .max(max)
    .superRefine((value, ctx) => {
      const problem = controlCharacterProblem(value, options);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}
