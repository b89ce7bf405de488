/**
 * Risk, computed by the server from Lapse's own history (docs/monitoring.md#risk). Pure: the
 * store keeps the baselines (updated incrementally as requests happen, never scanned per request)
 * and hands them in; this file turns them into signals and a score, and folds a new request into
 * a person's baseline. Nothing here is supplied by the client: a requester cannot choose the
 * value a policy reads.
 */

/** Hours in a week: the hour-of-week histogram has one counter per hour (UTC). */
export const HOURS_PER_WEEK = 168;
/** Duration buckets: half-octaves of minutes, from 1 minute to 2^16 minutes (45 days). */
export const DURATION_BUCKETS = 32;

/** A person's own baseline: one row per principal, folded forward by `observeRequest`. */
export interface PersonBaseline {
  /** Requests (and break-glass uses) seen so far. */
  readonly requests: number;
  /** Requests per hour of the week (0 = Sunday 00:00 UTC). */
  readonly hours: readonly number[];
  /** Requested durations per half-octave bucket (see durationBucket). */
  readonly durations: readonly number[];
  /** Requests in the last hour or so, as an exponentially decaying count (time constant 1 h). */
  readonly velocity: DecayingCount;
  /** Break-glass uses in the last month or so (time constant 30 days). */
  readonly breakGlass: DecayingCount;
}

export interface DecayingCount {
  readonly value: number;
  /** When `value` was last brought up to date (ms since the epoch). */
  readonly atMs: number;
}

export const VELOCITY_TAU_MS = 3_600_000;
export const BREAK_GLASS_TAU_MS = 30 * 86_400_000;

/** Everything the store knows that bears on one request. */
export interface RiskHistory {
  /** Undefined: the person has never asked for anything (a new person). */
  readonly person: PersonBaseline | undefined;
  /** How often this person asked for this target/entitlement before. */
  readonly targetRequests: number;
  /**
   * The person's peer group (people sharing a group with them, who have any history): how many
   * there are, and how many of them ever asked for this target/entitlement. The group with the
   * most users of the target counts; undefined when the person has no groups.
   */
  readonly peers: { readonly users: number; readonly usedTarget: number } | undefined;
  /** For each client attribute given with the request: whether this person used it before (undefined: not given, or nothing of that kind seen yet). */
  readonly seen: Partial<Record<SeenKind, boolean>>;
}

/** Client attributes remembered per person. */
export const SEEN_KINDS = ['network', 'userAgent', 'country', 'asn'] as const;
export type SeenKind = (typeof SEEN_KINDS)[number];

/** The request as risk sees it. */
export interface RiskRequest {
  readonly durationMs: number;
  readonly now: Date;
  /** Device posture from a trusted proxy's header: undefined when not configured or not sent. */
  readonly device?: { readonly trusted: boolean } | undefined;
}

/** The signals, in the order they are reported. Each is exposed to CEL as `risk.<name>`. */
export const RISK_SIGNALS = [
  'noHistory',
  'newTarget',
  'peerUnusual',
  'offHours',
  'unusualDuration',
  'highVelocity',
  'frequentBreakGlass',
  'newNetwork',
  'newUserAgent',
  'newCountry',
  'newAsn',
  'untrustedDevice',
] as const;
export type RiskSignal = (typeof RISK_SIGNALS)[number];

/**
 * How much each signal weighs. The score combines them as independent pieces of evidence
 * (noisy-OR): score = round(100 × (1 − Π(1 − w))) over the signals present, so adding a signal
 * never lowers it and no combination exceeds 100. A new person (noHistory alone) scores 30.
 */
export const RISK_WEIGHTS: Readonly<Record<RiskSignal, number>> = {
  noHistory: 0.3,
  newTarget: 0.25,
  peerUnusual: 0.3,
  offHours: 0.2,
  unusualDuration: 0.2,
  highVelocity: 0.25,
  frequentBreakGlass: 0.3,
  newNetwork: 0.2,
  newUserAgent: 0.1,
  newCountry: 0.35,
  newAsn: 0.15,
  untrustedDevice: 0.4,
};

/** The thresholds behind the signals (docs/monitoring.md says how to read them). */
export const RISK_THRESHOLDS = {
  /** Requests of history before hour-of-week and duration are judged. */
  minHistory: 10,
  /** Share of the person's requests within ±1 h of this hour of the week below which it is off-hours. */
  offHoursShare: 0.02,
  /** Modified z-score (0.6745 × |x − median| / MAD, on log-durations) above which a duration is unusual. */
  durationZ: 3.5,
  /** Peers (with history) needed before the peer group is judged. */
  minPeers: 5,
  /** Share of peers who used the target below which it is unusual for the group. */
  peerShare: 0.1,
  /** Decayed requests in the last hour at or above which velocity is high (this one included). */
  velocity: 5,
  /** Decayed break-glass uses in the last 30 days at or above which they are frequent. */
  breakGlass: 2,
} as const;

export interface RiskAssessment {
  /** 0–100. */
  readonly score: number;
  /** The signals present, in RISK_SIGNALS order, with a sentence each. */
  readonly reasons: readonly string[];
  readonly signals: Readonly<Record<RiskSignal, boolean>>;
  /** The robust z-score of the duration (0 when not judged). */
  readonly durationZ: number;
  /** Decayed requests in the last hour, this one included. */
  readonly velocity: number;
}

/** Noisy-OR of the weights of the signals present. */
export function riskScore(signals: Readonly<Record<RiskSignal, boolean>>): number {
  let keep = 1;
  for (const name of RISK_SIGNALS) if (signals[name]) keep *= 1 - RISK_WEIGHTS[name];
  return Math.round(100 * (1 - keep));
}

const REASONS: Readonly<Record<RiskSignal, string>> = {
  noHistory: 'no history yet: neutral score',
  newTarget: 'first request for this entitlement',
  peerUnusual: 'few of the people sharing their groups use this entitlement',
  offHours: 'outside their usual hours of the week',
  unusualDuration: 'duration unusual for them',
  highVelocity: 'many requests in the last hour',
  frequentBreakGlass: 'repeated break-glass in the last 30 days',
  newNetwork: 'from a network not seen for them before',
  newUserAgent: 'from a client (user agent) not seen for them before',
  newCountry: 'from a country not seen for them before',
  newAsn: 'from a network operator (ASN) not seen for them before',
  untrustedDevice: 'device posture not trusted',
};

/** The signals and score of one request given the history before it. */
export function assessRisk(history: RiskHistory, request: RiskRequest): RiskAssessment {
  const person = history.person;
  const known = person !== undefined && person.requests > 0;
  const enough = known && person.requests >= RISK_THRESHOLDS.minHistory;
  const durationZ = enough ? robustZ(person.durations, durationBucket(request.durationMs)) : 0;
  const velocity = decayed(person?.velocity, request.now.getTime(), VELOCITY_TAU_MS) + 1;
  const breakGlass = decayed(person?.breakGlass, request.now.getTime(), BREAK_GLASS_TAU_MS);
  const peers = history.peers;
  const signals: Record<RiskSignal, boolean> = {
    noHistory: !known,
    newTarget: known && history.targetRequests === 0,
    peerUnusual:
      history.targetRequests === 0 &&
      peers !== undefined &&
      peers.users >= RISK_THRESHOLDS.minPeers &&
      peers.usedTarget / peers.users < RISK_THRESHOLDS.peerShare,
    offHours: enough && hourShare(person.hours, hourOfWeek(request.now)) < RISK_THRESHOLDS.offHoursShare,
    unusualDuration: durationZ > RISK_THRESHOLDS.durationZ,
    highVelocity: velocity >= RISK_THRESHOLDS.velocity,
    frequentBreakGlass: breakGlass >= RISK_THRESHOLDS.breakGlass - 1e-9,
    newNetwork: history.seen.network === false,
    newUserAgent: history.seen.userAgent === false,
    newCountry: history.seen.country === false,
    newAsn: history.seen.asn === false,
    untrustedDevice: request.device !== undefined && !request.device.trusted,
  };
  return {
    score: riskScore(signals),
    reasons: RISK_SIGNALS.filter((name) => signals[name]).map((name) => REASONS[name]),
    signals,
    durationZ: Math.round(durationZ * 100) / 100,
    velocity: Math.round(velocity * 100) / 100,
  };
}

/** The score a person with no history gets (documented): noHistory alone. */
export const NEUTRAL_SCORE = riskScore({ ...Object.fromEntries(RISK_SIGNALS.map((s) => [s, false])), noHistory: true } as Record<RiskSignal, boolean>);

/** An empty baseline, for a person's first request. */
export function emptyBaseline(): PersonBaseline {
  return {
    requests: 0,
    hours: new Array<number>(HOURS_PER_WEEK).fill(0),
    durations: new Array<number>(DURATION_BUCKETS).fill(0),
    velocity: { value: 0, atMs: 0 },
    breakGlass: { value: 0, atMs: 0 },
  };
}

/** The baseline after one more request (or break-glass use): what the store writes back. */
export function observeRequest(baseline: PersonBaseline | undefined, request: RiskRequest & { readonly breakGlass?: boolean }): PersonBaseline {
  const base = baseline ?? emptyBaseline();
  const at = request.now.getTime();
  const hours = [...base.hours];
  hours[hourOfWeek(request.now)]! += 1;
  const durations = [...base.durations];
  durations[durationBucket(request.durationMs)]! += 1;
  return {
    requests: base.requests + 1,
    hours,
    durations,
    velocity: { value: decayed(base.velocity, at, VELOCITY_TAU_MS) + 1, atMs: at },
    breakGlass: request.breakGlass ? { value: decayed(base.breakGlass, at, BREAK_GLASS_TAU_MS) + 1, atMs: at } : base.breakGlass,
  };
}

/** The risk as CEL sees it (`risk.score`, `risk.reasons`, `risk.<signal>`, `risk.durationZ`, `risk.velocity`). */
export function riskBinding(risk: RiskAssessment | undefined): Record<string, unknown> {
  const r = risk ?? UNASSESSED;
  return { score: BigInt(r.score), reasons: [...r.reasons], ...r.signals, durationZ: r.durationZ, velocity: r.velocity };
}

/** The risk as recorded in a decision's audit event. */
export function riskAuditData(risk: RiskAssessment): Record<string, unknown> {
  return { score: risk.score, signals: RISK_SIGNALS.filter((s) => risk.signals[s]), durationZ: risk.durationZ, velocity: risk.velocity };
}

/**
 * What a policy sees when nothing was assessed (policy tests without a `risk` block, an offline
 * `policy explain`): the neutral score of a person with no history.
 */
export const UNASSESSED: RiskAssessment = assessRisk(
  { person: undefined, targetRequests: 0, peers: undefined, seen: {} },
  { durationMs: 60_000, now: new Date(0) },
);

/**
 * An assessment with exactly these signals (and the score they make): what a policy test case's
 * `risk: { signals: [...] }` stands for. Without noHistory the person counts as known.
 */
export function assessmentWithSignals(present: readonly RiskSignal[]): RiskAssessment {
  const signals = Object.fromEntries(RISK_SIGNALS.map((s) => [s, present.includes(s)])) as Record<RiskSignal, boolean>;
  return {
    score: riskScore(signals),
    reasons: RISK_SIGNALS.filter((name) => signals[name]).map((name) => REASONS[name]),
    signals,
    durationZ: 0,
    velocity: 1,
  };
}

/** Hour of the week in UTC, 0 = Sunday 00:00. */
export function hourOfWeek(now: Date): number {
  return now.getUTCDay() * 24 + now.getUTCHours();
}

/** Half-octave bucket of a duration in minutes: bucket i covers [2^(i/2), 2^((i+1)/2)) minutes. */
export function durationBucket(durationMs: number): number {
  const minutes = Math.max(1, durationMs / 60_000);
  return Math.min(DURATION_BUCKETS - 1, Math.floor(2 * Math.log2(minutes)));
}

function decayed(count: DecayingCount | undefined, atMs: number, tau: number): number {
  if (!count || count.value === 0) return 0;
  return count.value * Math.exp(-Math.max(0, atMs - count.atMs) / tau);
}

function hourShare(hours: readonly number[], hour: number): number {
  let total = 0;
  for (const n of hours) total += n;
  if (total === 0) return 1;
  const near = hours[(hour + HOURS_PER_WEEK - 1) % HOURS_PER_WEEK]! + hours[hour]! + hours[(hour + 1) % HOURS_PER_WEEK]!;
  return near / total;
}

/**
 * The modified z-score of a bucket against a histogram of buckets: 0.6745 × |x − median| / MAD
 * (Iglewicz and Hoaglin). The MAD is at least one bucket (half an octave), so a person who always
 * asks for the same duration is not flagged for asking for a little more.
 */
export function robustZ(histogram: readonly number[], bucket: number): number {
  const median = histogramMedian(histogram.map((n, i) => [i, n] as const));
  const deviations = new Map<number, number>();
  histogram.forEach((n, i) => {
    if (n > 0) deviations.set(Math.abs(i - median), (deviations.get(Math.abs(i - median)) ?? 0) + n);
  });
  const mad = Math.max(1, histogramMedian([...deviations.entries()]));
  return (0.6745 * Math.abs(bucket - median)) / mad;
}

function histogramMedian(entries: readonly (readonly [value: number, count: number])[]): number {
  const sorted = [...entries].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return 0;
  let seen = 0;
  for (const [value, n] of sorted) {
    seen += n;
    if (seen * 2 >= total) return value;
  }
  return sorted.at(-1)![0];
}
