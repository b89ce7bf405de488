import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assessRisk,
  durationBucket,
  NEUTRAL_SCORE,
  observeRequest,
  RISK_SIGNALS,
  riskScore,
  robustZ,
  type PersonBaseline,
  type RiskHistory,
  type RiskSignal,
} from './risk.js';

const HOUR = 3_600_000;
const signalsArb = fc.record(Object.fromEntries(RISK_SIGNALS.map((s) => [s, fc.boolean()])) as Record<RiskSignal, fc.Arbitrary<boolean>>);

/** An in-memory history with the store's semantics (src/store/risk.ts), for synthetic populations. */
class MemoryHistory {
  readonly people = new Map<string, PersonBaseline>();
  readonly targets = new Map<string, number>();
  readonly groupUsers = new Map<string, Set<string>>();
  readonly groupTargets = new Map<string, Set<string>>();
  readonly seen = new Map<string, Set<string>>();

  history(person: string, groups: readonly string[], target: string, network: string): RiskHistory {
    let peers: RiskHistory['peers'];
    for (const group of groups) {
      const users = this.groupUsers.get(group)?.size ?? 0;
      const used = this.groupTargets.get(`${group}|${target}`)?.size ?? 0;
      if (!peers || used > peers.usedTarget) peers = { users, usedTarget: used };
    }
    const networks = this.seen.get(person);
    return {
      person: this.people.get(person),
      targetRequests: this.targets.get(`${person}|${target}`) ?? 0,
      peers,
      seen: networks ? { network: networks.has(network) } : {},
    };
  }

  observe(person: string, groups: readonly string[], target: string, network: string, durationMs: number, now: Date): void {
    this.people.set(person, observeRequest(this.people.get(person), { durationMs, now }));
    this.targets.set(`${person}|${target}`, (this.targets.get(`${person}|${target}`) ?? 0) + 1);
    for (const group of groups) {
      (this.groupUsers.get(group) ?? this.groupUsers.set(group, new Set()).get(group)!).add(person);
      const key = `${group}|${target}`;
      (this.groupTargets.get(key) ?? this.groupTargets.set(key, new Set()).get(key)!).add(person);
    }
    (this.seen.get(person) ?? this.seen.set(person, new Set()).get(person)!).add(network);
  }
}

describe('risk score', () => {
  it('never decreases when a signal is added', () => {
    fc.assert(
      fc.property(signalsArb, fc.constantFrom(...RISK_SIGNALS), (signals, added) => {
        expect(riskScore({ ...signals, [added]: true })).toBeGreaterThanOrEqual(riskScore(signals));
      }),
    );
  });

  it('stays within 0–100, and a new person gets the documented neutral score', () => {
    fc.assert(fc.property(signalsArb, (signals) => riskScore(signals) >= 0 && riskScore(signals) <= 100));
    expect(NEUTRAL_SCORE).toBe(30);
    const fresh = assessRisk({ person: undefined, targetRequests: 0, peers: undefined, seen: {} }, { durationMs: HOUR, now: new Date() });
    expect(fresh.score).toBe(30);
    expect(fresh.reasons).toEqual(['no history yet: neutral score']);
  });

  it('gives identical scores for identical histories', () => {
    const event = fc.record({
      target: fc.constantFrom('db/ro', 'db/admin', 'k8s/edit'),
      hour: fc.integer({ min: 0, max: 24 * 7 * 4 }),
      duration: fc.integer({ min: 1, max: 48 * 60 }),
      network: fc.constantFrom('10.0.0.0/24', '10.0.1.0/24'),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), event, (events, probe) => {
        const build = () => {
          const memory = new MemoryHistory();
          for (const e of events) memory.observe('p', ['g'], e.target, e.network, e.duration * 60_000, new Date(e.hour * HOUR));
          return assessRisk(memory.history('p', ['g'], probe.target, probe.network), {
            durationMs: probe.duration * 60_000,
            now: new Date((24 * 7 * 4 + probe.hour) * HOUR),
          });
        };
        expect(build()).toEqual(build());
      }),
    );
  });

  it('ranks planted anomalies above a seeded synthetic population', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const random = mulberry32(seed);
        const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
        const memory = new MemoryHistory();
        const groups = ['sre', 'dba', 'dev'];
        const targetsOf: Record<string, string[]> = { sre: ['k8s/edit', 'db/ro'], dba: ['db/admin', 'db/ro'], dev: ['k8s/view', 'logs/read'] };
        const people = Array.from({ length: 30 }, (_, i) => ({ id: `p${i}`, group: groups[i % 3]!, network: `10.${i}.0.0/24` }));
        const start = Date.UTC(2026, 0, 5); // a Monday
        const workday = () => start + Math.floor(random() * 20) * 86_400_000 * (7 / 5) + (9 + random() * 8) * HOUR;
        const usual = () => (pick([1, 2, 2, 4]) * HOUR * (0.9 + random() * 0.2)) | 0;
        for (let day = 0; day < 40 * 30; day++) {
          const p = pick(people);
          memory.observe(p.id, [p.group], pick(targetsOf[p.group]!), p.network, usual(), new Date(weekdayOnly(workday())));
        }
        const later = start + 40 * 86_400_000;
        const normal = people.map((p) => {
          const at = new Date(weekdayOnly(later + Math.floor(random() * 5) * 86_400_000 + (10 + random() * 6) * HOUR));
          return assessRisk(memory.history(p.id, [p.group], pick(targetsOf[p.group]!), p.network), { durationMs: usual(), now: at }).score;
        });
        const planted = people.slice(0, 5).map((p) => {
          const alien = p.group === 'dev' ? 'db/admin' : 'logs/read';
          const sunday3am = new Date(Date.UTC(2026, 1, 15, 3));
          return assessRisk(memory.history(p.id, [p.group], alien, '203.0.113.0/24'), { durationMs: 72 * HOUR, now: sunday3am }).score;
        });
        expect(Math.min(...planted)).toBeGreaterThan(Math.max(...normal));
      }),
      { numRuns: 20 },
    );
  });
});

describe('robust z-score', () => {
  it('is large for a duration far from a steady history and small for the usual one', () => {
    const histogram = new Array<number>(32).fill(0);
    histogram[durationBucket(HOUR)] = 40;
    histogram[durationBucket(2 * HOUR)] = 10;
    expect(robustZ(histogram, durationBucket(HOUR))).toBe(0);
    expect(robustZ(histogram, durationBucket(72 * HOUR))).toBeGreaterThan(3.5);
  });
});

function weekdayOnly(ms: number): number {
  const day = new Date(ms).getUTCDay();
  return day === 0 ? ms + 86_400_000 : day === 6 ? ms + 2 * 86_400_000 : ms;
}

/** A small seeded generator, so a failing population can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
