import { z } from 'zod';
import { boundedText } from './text.js';

/**
 * Anomaly detectors (docs/monitoring.md#alerts), as pure rules over audit events: given one event
 * (and, for bursts, a decaying count the engine keeps per person), what alert it raises, if any.
 * The engine runs them in a worker that reads the audit chain from a durable cursor, so every
 * event is seen once whoever wrote it (engine, sign-in, config reload), and sends the alerts
 * through the notification outbox.
 */

export const ALERT_SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];
export const ALERT_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

export const ALERT_KINDS = [
  'denial_burst',
  'signin_failure_burst',
  'break_glass_outside_incident',
  'revocation_overdue',
  'new_network_access',
  'standing_access',
  'config_change',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** A detector's finding, before it is stored. */
export interface RaisedAlert {
  readonly kind: AlertKind;
  readonly severity: AlertSeverity;
  readonly principalId: string | null;
  readonly subject: string | null;
  readonly summary: string;
  readonly detail: Readonly<Record<string, unknown>>;
  /** One unresolved alert per key: a repeat counts an occurrence instead of a new alert. */
  readonly dedupeKey: string;
}

/** An audit event as the detectors read it. */
export interface DetectedEvent {
  readonly seq: number;
  readonly action: string;
  readonly actor: string;
  readonly subject: string | null;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Tunables (config `alerts:`), with the defaults docs/monitoring.md documents. */
export interface DetectorSettings {
  /** Denials/refusals for one person within about `burstWindowMs` that make a burst. */
  readonly denialBurst: number;
  readonly signinFailureBurst: number;
  readonly burstWindowMs: number;
  /** How long past its expiry a grant may still be revoking before it is an alert. */
  readonly revocationOverdueMs: number;
}

export const DEFAULT_DETECTOR_SETTINGS: DetectorSettings = {
  denialBurst: 5,
  signinFailureBurst: 5,
  burstWindowMs: 10 * 60_000,
  revocationOverdueMs: 5 * 60_000,
};

/** Which burst counter an event feeds (per person), if any. */
export function burstCounter(event: DetectedEvent): { readonly key: string; readonly kind: 'denial' | 'signin' } | undefined {
  if (event.action === 'request.denied' || event.action === 'request.rejected' || event.action === 'break_glass.refused') {
    return { key: `denial:${event.actor}`, kind: 'denial' };
  }
  if (event.action === 'auth.login_failed' || event.action === 'auth.mfa_refused' || event.action === 'auth.oidc_failed') {
    // A refused sign-in is audited by `anonymous` about the account tried (its subject).
    const who = event.subject ?? event.actor;
    return { key: `signin:${who}`, kind: 'signin' };
  }
  return undefined;
}

/**
 * The alert one event raises. `burst` is the decayed count of the event's burst counter with this
 * event included (see burstCounter), when it has one.
 */
export function detect(event: DetectedEvent, settings: DetectorSettings, burst?: number): RaisedAlert | undefined {
  const data = event.data;
  const entitlement = typeof data.entitlement === 'string' ? data.entitlement : undefined;
  const counter = burstCounter(event);
  if (counter && burst !== undefined) {
    const limit = counter.kind === 'denial' ? settings.denialBurst : settings.signinFailureBurst;
    // NB. A decaying count of n events in quick succession is a hair under n: allow for that.
    if (burst < limit - 0.05) return undefined;
    const who = counter.key.slice(counter.key.indexOf(':') + 1);
    return {
      kind: counter.kind === 'denial' ? 'denial_burst' : 'signin_failure_burst',
      severity: 'high',
      principalId: who,
      subject: null,
      summary:
        counter.kind === 'denial'
          ? `${who}: ${Math.floor(burst)} denied or refused requests in a short time`
          : `${who}: ${Math.floor(burst)} refused sign-ins in a short time`,
      detail: { lastEvent: event.seq, count: Math.floor(burst), action: event.action },
      dedupeKey: `${counter.kind}_burst:${who}`,
    };
  }
  switch (event.action) {
    case 'break_glass.activated': {
      if (typeof data.incident === 'string' && data.incident !== '') return undefined;
      return {
        kind: 'break_glass_outside_incident',
        severity: 'critical',
        principalId: event.actor,
        subject: event.subject,
        summary: `${event.actor} broke glass into ${entitlement ?? 'an entitlement'} with no incident linked`,
        detail: { event: event.seq, entitlement, grant: data.grant ?? null },
        dedupeKey: `break_glass:${event.subject ?? event.seq}`,
      };
    }
    case 'request.pending':
    case 'request.approved':
    case 'request.denied': {
      const risk = data.risk as { signals?: unknown } | undefined;
      if (!Array.isArray(risk?.signals) || !risk.signals.includes('newNetwork')) return undefined;
      return {
        kind: 'new_network_access',
        severity: 'medium',
        principalId: event.actor,
        subject: event.subject,
        summary: `${event.actor} asked for ${entitlement ?? 'access'} from a network not seen for them before`,
        detail: { event: event.seq, entitlement, risk },
        dedupeKey: `new_network:${event.actor}:${event.subject ?? event.seq}`,
      };
    }
    case 'finding.opened': {
      if (data.kind !== 'standing') return undefined;
      return {
        kind: 'standing_access',
        severity: 'high',
        principalId: typeof data.principal === 'string' ? data.principal : null,
        subject: event.subject,
        summary: `reconciliation found access Lapse did not grant${entitlement ? ` on ${entitlement}` : ''}`,
        detail: { event: event.seq, ...pick(data, ['kind', 'target', 'entitlement', 'account']) },
        dedupeKey: `finding:${event.subject ?? event.seq}`,
      };
    }
    case 'config.reloaded':
    case 'config.rejected':
      // A reload that changed nothing (same version hash) is not a change.
      if (event.action === 'config.reloaded' && data.version === data.previous) return undefined;
      return {
        kind: 'config_change',
        severity: event.action === 'config.rejected' ? 'medium' : 'low',
        principalId: null,
        subject: null,
        summary: event.action === 'config.reloaded' ? 'configuration (policies) changed' : 'a new configuration was rejected',
        detail: { event: event.seq, ...pick(data, ['version', 'previous', 'inForce']) },
        dedupeKey: `config:${event.seq}`,
      };
    default:
      return undefined;
  }
}

/** The alert for a grant still revoking well after it should have ended (found by the sweep, not an event). */
export function overdueRevocation(grant: { id: string; principalId: string; entitlement: string; overdueMs: number }): RaisedAlert {
  return {
    kind: 'revocation_overdue',
    severity: 'critical',
    principalId: grant.principalId,
    subject: grant.id,
    summary: `revocation of ${grant.id} (${grant.entitlement}) is overdue by ${Math.round(grant.overdueMs / 60_000)} min`,
    detail: { entitlement: grant.entitlement, overdueMs: grant.overdueMs },
    dedupeKey: `revocation_overdue:${grant.id}`,
  };
}

function pick(data: Readonly<Record<string, unknown>>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => data[k] !== undefined).map((k) => [k, data[k]]));
}

/** Input to acknowledge or resolve an alert (API and CLI). */
export const alertActionInput = z
  .object({
    action: z.enum(['acknowledge', 'resolve']),
    note: boundedText(2000, { multiline: true }).optional(),
  })
  .strict();
