import { isIP } from 'node:net';
import { z } from 'zod';
import { boundedText } from '../domain/text.js';
import { integrationsSchema } from './integrations-schema.js';
import { TICKET_SYSTEMS } from '../domain/policy/facts.js';
import { duration, entitlementPattern, name, subjectSet, text } from './schema-parts.js';
import { auditExportSchema } from './audit-export.js';
import { notificationsSchema } from './notifications.js';
import { identitySchema } from './identity.js';
import { reviewsSchema } from './reviews.js';

export { duration };
import { PASSWORD_ALPHABETS } from './types.js';

/** An IPv4/IPv6 address, or one with a prefix length that fits it (CIDR). */
function isAddressOrCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Connector settings: free-form for the connector to validate, but bounded in size and depth. */
const settingValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([text(8192), z.number(), z.boolean(), z.null(), z.array(settingValue).max(256), z.record(boundedText(128), settingValue)]),
);
const settings = z.record(boundedText(128), settingValue).default({});
const labels = z.record(boundedText(63), boundedText(256)).default({});

/** A vault check-out (docs/vault.md): the entitlement lends an existing account, rotated after use. */
const checkout = z
  .object({
    account: boundedText(128).min(1),
    exclusive: z.boolean().default(true),
    whenCheckedOut: z.enum(['queue', 'refuse']).optional(),
    rotateEvery: duration.optional(),
    password: z
      .object({
        length: z.number().int().min(16, 'at least 16 characters').max(128, 'at most 128 characters').default(32),
        alphabet: z.enum(PASSWORD_ALPHABETS).default('alphanumeric'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => c.exclusive || c.whenCheckedOut === undefined, {
    message: 'whenCheckedOut applies only to exclusive accounts; remove it or set exclusive: true',
    path: ['whenCheckedOut'],
  })
  .refine((c) => c.rotateEvery === undefined || c.rotateEvery >= 60_000, { message: 'rotateEvery must be at least 1m', path: ['rotateEvery'] });

const entitlement = z
  .object({ description: text(1000).default(''), settings, labels, checkout: checkout.optional() })
  .strict()
  .refine((e) => e.checkout === undefined || Object.keys(e.settings).length === 0, {
    message: 'a checkout entitlement takes no connector settings: the connector only rotates the account; remove settings',
    path: ['settings'],
  })
  .prefault({});

/** Per target: overrides of the global reconciliation settings, and whether drift is removed. */
const targetReconcile = z
  .object({ enabled: z.boolean().optional(), remediate: z.boolean().default(false), interval: duration.optional() })
  .strict()
  .prefault({});

/** One target: checked on its own too, so connector settings are checked when another part of the file is wrong. */
export const targetSchema = z
  .object({
    connector: name('connector'),
    description: text(1000).default(''),
    settings,
    labels,
    reconcile: targetReconcile,
    entitlements: z
      .record(
        name('entitlement'),
        z.preprocess((e) => e ?? {}, entitlement),
      )
      .refine((e) => Object.keys(e).length > 0, 'a target needs at least one entitlement'),
  })
  .strict();

const stage = z
  .object({
    name: name('stage'),
    approvers: subjectSet,
    quorum: z.number().int().min(1).max(20).default(1),
    mfa: z.object({ maxAge: duration }).strict().optional(),
  })
  .strict()
  .refine((s) => s.approvers.users.length + s.approvers.groups.length > 0, {
    message: 'a stage must name at least one approver user or group',
    path: ['approvers'],
  });

const policy = z
  .object({
    name: name('policy'),
    description: text(1000).default(''),
    subjects: subjectSet,
    entitlements: z.array(entitlementPattern).min(1).max(500),
    timezone: boundedText(64).default('UTC'),
    duration: z
      .object({ default: duration.prefault('1h'), max: duration.prefault('8h') })
      .strict()
      .prefault({}),
    extension: z
      .object({ maxCount: z.number().int().min(0).max(100).default(0), maxTotal: duration.prefault('24h'), requireApproval: z.boolean().default(true) })
      .strict()
      .prefault({}),
    require: z
      .object({
        justification: z
          .object({ minLength: z.number().int().min(0).max(2000) })
          .strict()
          .optional(),
        ticket: z
          .object({
            pattern: boundedText(500),
            verify: z.enum(TICKET_SYSTEMS, { message: 'verify names the ticket system: jira or servicenow' }).optional(),
            assignedToRequester: z.boolean().optional(),
          })
          .strict()
          .refine((t) => t.assignedToRequester === undefined || t.verify !== undefined, {
            message: 'assignedToRequester needs verify (jira or servicenow) to look the ticket up',
            path: ['assignedToRequester'],
          })
          .optional(),
        mfa: z.object({ maxAge: duration }).strict().optional(),
      })
      .strict()
      .prefault({}),
    conditions: text(2000).optional(),
    autoApprove: z.boolean().default(false),
    autoApproveIf: text(2000).optional(),
    approval: z
      .object({ pendingTimeout: duration.prefault('24h'), stages: z.array(stage).max(10).default([]) })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((p) => p.duration.default <= p.duration.max, { message: 'duration.default must not exceed duration.max', path: ['duration', 'default'] });

/** Sign-in: the server's external URL, OIDC single sign-on, local accounts, sessions, login limits. */
const auth = z
  .object({
    publicUrl: z
      .url({ protocol: /^https?$/, message: 'write the URL people use to reach Lapse, e.g. https://lapse.example.com' })
      .max(2048)
      .optional(),
    oidc: z
      .object({
        issuer: z.url({ protocol: /^https?$/ }).max(2048),
        clientId: boundedText(256).min(1),
        clientSecret: text(1024).optional(),
        scopes: z
          .array(
            z
              .string()
              .min(1)
              .max(64)
              .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes'),
          )
          .min(1)
          .max(20)
          .default(['openid', 'profile', 'email'])
          .refine((s) => s.includes('openid'), 'scopes must include "openid"'),
        groupsClaim: boundedText(128).min(1).default('groups'),
        usernameClaim: boundedText(128).min(1).default('preferred_username'),
        allowInsecureHttp: z.boolean().default(false),
      })
      .strict()
      .optional(),
    local: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .prefault({}),
    trustedProxies: z
      .array(z.string().min(2).max(50).refine(isAddressOrCidr, 'write an IP address or a CIDR range, e.g. 10.0.0.0/8 or ::1'))
      .max(50)
      .default([]),
    sessions: z
      .object({ idleTimeout: duration.prefault('30m'), absoluteTimeout: duration.prefault('12h') })
      .strict()
      .prefault({}),
    loginLimits: z
      .object({ perAccountPerHour: z.number().int().min(1).max(10_000).default(100), perIpPerMinute: z.number().int().min(1).max(100_000).default(30) })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

/**
 * The lapse.yaml schema. Every value is bounded (a bare z.string() would accept 40 MB) and every
 * object is strict, so a typo is an error rather than a silently ignored setting.
 */
export const configSchema = z
  .object({
    version: z.literal(1, { message: 'version must be 1' }),
    identity: identitySchema,
    roles: z.object({ admins: subjectSet, auditors: subjectSet }).strict().prefault({}),
    auth,
    targets: z.record(name('target'), targetSchema).refine((t) => Object.keys(t).length > 0, 'define at least one target'),
    policies: z.array(policy).max(1000).default([]),
    breakGlass: z
      .object({
        enabled: z.boolean().default(false),
        subjects: subjectSet,
        entitlements: z.array(entitlementPattern).max(500).default([]),
        maxDuration: duration.prefault('1h'),
        minReasonLength: z.number().int().min(1).max(2000).default(20),
      })
      .strict()
      .prefault({}),
    audit: z
      .object({
        signingKey: text(16384).optional(),
        checkpointEvery: z.number().int().min(1).max(1_000_000).default(1000),
        checkpointInterval: duration.prefault('1m'),
        ...auditExportSchema,
      })
      .strict()
      .prefault({}),
    secrets: z
      .object({
        encryptionKey: text(1024).optional(),
        previousEncryptionKeys: z.array(text(1024)).max(10).default([]),
      })
      .strict()
      .prefault({}),
    reconcile: z
      .object({ enabled: z.boolean().default(true), interval: duration.prefault('15m') })
      .strict()
      .prefault({}),
    integrations: integrationsSchema,
    notifications: notificationsSchema,
    reviews: reviewsSchema,
    risk: z
      .object({
        // Operator-supplied MaxMind databases (GeoLite2/GeoIP2 Country, ASN); Lapse ships and downloads none.
        geoip: z
          .object({ countryDatabase: text(4096).optional(), asnDatabase: text(4096).optional() })
          .strict()
          .prefault({}),
        // Values of the X-Lapse-Device-Posture header (set by a trusted proxy) that count as a trusted device.
        devicePosture: z
          .object({ trusted: z.array(boundedText(64).min(1)).min(1).max(50) })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    alerts: z
      .object({
        enabled: z.boolean().default(true),
        interval: duration.prefault('10s'),
        denialBurst: z.number().int().min(2).max(10_000).default(5),
        signinFailureBurst: z.number().int().min(2).max(10_000).default(5),
        burstWindow: duration.prefault('10m'),
        revocationOverdue: duration.prefault('5m'),
      })
      .strict()
      .prefault({}),
    scheduler: z
      .object({
        pollInterval: duration.prefault('1s'),
        connectorTimeout: duration.prefault('10s'),
        provisionAttempts: z.number().int().min(1).max(100).default(5),
        revokeBackoff: z
          .object({ min: duration.prefault('1s'), max: duration.prefault('60s') })
          .strict()
          .prefault({}),
        // NB. No defaults of its own: unset, provisioning keeps retrying with revokeBackoff's bounds, as
        // it did before the two were separate.
        provisionBackoff: z.object({ min: duration.optional(), max: duration.optional() }).strict().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type ParsedConfig = z.output<typeof configSchema>;
