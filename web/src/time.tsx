import { Text, Tooltip } from '@mantine/core';
import { useEffect, useState } from 'react';

/** Dates in the viewer's own time zone (the browser's), with the zone named. */
const absolute = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  timeZoneName: 'short',
});
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function formatAbsolute(iso: string): string {
  return absolute.format(new Date(iso));
}

export function formatRelative(iso: string, now = Date.now()): string {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, 'second');
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86_400) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86_400), 'day');
}

/** "1h 30m", "45m", "2d 4h" */
export function formatDuration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  return [d ? `${d}d` : '', h ? `${h}h` : '', m || (!d && !h) ? `${m}m` : ''].filter(Boolean).join(' ');
}

/** The current time, updated every `everyMs` (for countdowns and relative times). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** A time shown relative ("5 minutes ago"), with the absolute local time on hover and for screen readers. */
export function When({ at }: { at: string | null | undefined }) {
  const now = useNow(30_000);
  if (!at)
    return (
      <Text span c="dimmed">
        —
      </Text>
    );
  return (
    <Tooltip label={formatAbsolute(at)}>
      <time dateTime={at} title={formatAbsolute(at)}>
        {formatRelative(at, now)}
      </time>
    </Tooltip>
  );
}

/** Time left until `until`, ticking every second, in fixed-width digits so nothing shifts. */
export function Countdown({ until }: { until: string }) {
  const now = useNow(1000);
  const left = Math.max(0, new Date(until).getTime() - now);
  const h = Math.floor(left / 3_600_000);
  const m = Math.floor((left % 3_600_000) / 60_000);
  const s = Math.floor((left % 60_000) / 1000);
  const text = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return (
    <Text
      span
      ff="monospace"
      style={{ fontVariantNumeric: 'tabular-nums' }}
      data-testid="countdown"
      aria-label={`${formatDuration(left)} left, until ${formatAbsolute(until)}`}
    >
      {text}
    </Text>
  );
}
