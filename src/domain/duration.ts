import { LapseError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DURATION_PATTERN = /^(?:(\d{1,6})(ms|s|m|h|d|w))+$/;
const PART = /(\d{1,6})(ms|s|m|h|d|w)/g;

/** Longest duration Lapse accepts anywhere: a year. Bounded so arithmetic stays exact. */
export const MAX_DURATION_MS = 366 * UNIT_MS.d;

/** Parses "90s", "15m", "1h30m", "7d" into milliseconds. */
export function parseDuration(text: string, where = 'duration'): number {
  const trimmed = text.trim();
  if (trimmed.length === 0 || trimmed.length > 32 || !DURATION_PATTERN.test(trimmed)) {
    throw new LapseError('validation_failed', `"${text.slice(0, 40)}" is not a duration`, {
      where,
      hint: 'Write a number with a unit, e.g. 30m, 1h, 1h30m, 7d (units: ms, s, m, h, d, w).',
    });
  }
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) {
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  if (total <= 0 || total > MAX_DURATION_MS) {
    throw new LapseError('validation_failed', `duration "${text}" is out of range`, {
      where,
      hint: 'Use a duration above zero and at most 366d.',
    });
  }
  return total;
}

/** Formats milliseconds as the shortest "1h30m" form. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let rest = ms;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit];
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}
