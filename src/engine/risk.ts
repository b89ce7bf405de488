import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { open, type AsnResponse, type CountryResponse, type Reader } from 'maxmind';
import type { EffectiveConfig } from '../config/types.js';
import type { Principal } from '../domain/principal.js';
import { assessRisk, observeRequest, type RiskAssessment, type SeenKind } from '../domain/risk.js';
import { readRiskHistory, recordRiskObservation, type RiskQuestion } from '../store/index.js';
import type { EngineContext, UnitOfWork } from './context.js';

/**
 * The risk of one request, computed by the server (docs/monitoring.md#risk): the client's
 * attributes are reduced to what is remembered (a network prefix, a hash of the user agent, a
 * country and ASN when the operator supplied MaxMind databases), the baselines are read by key,
 * and the pure rules in domain/risk.ts decide. Runs inside the decision's transaction: a few
 * primary-key reads, no other system called.
 */

export interface RiskSubject {
  readonly principal: Principal;
  readonly target: string;
  readonly entitlement: string;
  readonly durationMs: number;
  readonly client: { readonly ip?: string | undefined; readonly userAgent?: string | undefined; readonly devicePosture?: string | undefined };
}

/** The client attributes as remembered per person. */
export function clientAttributes(client: RiskSubject['client'], geo: GeoLookup | undefined): Partial<Record<SeenKind, string>> {
  const out: Partial<Record<SeenKind, string>> = {};
  const network = client.ip ? networkOf(client.ip) : undefined;
  if (network) out.network = network;
  // NB. A hash, not the string: the user agent is only compared, and it can carry personal detail.
  if (client.userAgent) out.userAgent = createHash('sha256').update(client.userAgent).digest('hex').slice(0, 32);
  if (client.ip && geo) {
    const located = geo(client.ip);
    if (located.country) out.country = located.country;
    if (located.asn) out.asn = located.asn;
  }
  return out;
}

/** The network a client address belongs to, for "new network": IPv4 /24, IPv6 /48. */
export function networkOf(ip: string): string | undefined {
  const bare = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(bare)) return `${bare.split('.').slice(0, 3).join('.')}.0/24`;
  if (!isIPv6(bare)) return undefined;
  const [head = '', tail = ''] = bare.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = bare.includes('::') ? [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 3)
    .map((g) => parseInt(g || '0', 16).toString(16))
    .join(':')}::/48`;
}

/**
 * Assesses a request and records it in the baselines (unless it was denied: a refused ask teaches nothing about normal use).
 * `geo` is opened before the transaction (context.risk.geoFor), so no file is opened inside it.
 */
export async function assessRequestRisk(
  context: EngineContext,
  unit: UnitOfWork,
  subject: RiskSubject,
  options: { readonly breakGlass?: boolean; readonly geo?: GeoLookup | undefined } = {},
): Promise<{ risk: RiskAssessment; record: (denied: boolean) => Promise<void> }> {
  const config = context.config();
  const question: RiskQuestion = {
    principalId: subject.principal.id,
    groups: subject.principal.groups,
    target: subject.target,
    entitlement: subject.entitlement,
    seen: clientAttributes(subject.client, options.geo),
  };
  const history = await readRiskHistory(unit.tx, question, { lock: true });
  const posture = config.risk.trustedDevicePostures;
  const device = posture && subject.client.devicePosture !== undefined ? { trusted: posture.has(subject.client.devicePosture) } : undefined;
  const request = { durationMs: subject.durationMs, now: unit.now, device };
  const risk = assessRisk(history, request);
  return {
    risk,
    record: async (denied) => {
      if (denied) return;
      await recordRiskObservation(unit.tx, question, observeRequest(history.person, { ...request, breakGlass: options.breakGlass === true }), unit.now);
    },
  };
}

/** Country and ASN of an address, from the operator's MaxMind databases. */
export type GeoLookup = (ip: string) => { country?: string; asn?: string };

/**
 * The MaxMind readers of one configuration, opened once (a reload that names other files opens
 * those). A database that cannot be opened is logged and leaves the signals off.
 */
export class RiskInputs {
  private readonly byConfig = new WeakMap<EffectiveConfig, Promise<GeoLookup | undefined>>();

  constructor(private readonly warn: (message: string, detail: Record<string, unknown>) => void) {}

  geoFor(config: EffectiveConfig): Promise<GeoLookup | undefined> {
    let geo = this.byConfig.get(config);
    if (!geo) {
      geo = this.openGeo(config.risk.countryDatabase, config.risk.asnDatabase);
      this.byConfig.set(config, geo);
    }
    return geo;
  }

  private async openGeo(countryPath: string | undefined, asnPath: string | undefined): Promise<GeoLookup | undefined> {
    if (!countryPath && !asnPath) return undefined;
    const openOne = async <T extends CountryResponse | AsnResponse>(path: string | undefined): Promise<Reader<T> | undefined> => {
      if (!path) return undefined;
      try {
        return await open<T>(path);
      } catch (error) {
        this.warn('MaxMind database could not be opened; its risk signals are off', { path, error: (error as Error).message });
        return undefined;
      }
    };
    const [country, asn] = await Promise.all([openOne<CountryResponse>(countryPath), openOne<AsnResponse>(asnPath)]);
    if (!country && !asn) return undefined;
    return (ip) => {
      const bare = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
      if (!isIPv4(bare) && !isIPv6(bare)) return {};
      const code = country?.get(bare)?.country?.iso_code;
      const number = asn?.get(bare)?.autonomous_system_number;
      return { ...(code ? { country: code } : {}), ...(number ? { asn: `AS${number}` } : {}) };
    };
  }
}
