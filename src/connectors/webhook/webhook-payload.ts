import { z } from 'zod';

/**
 * What Lapse POSTs to a webhook receiver and what it accepts back: version 1 of the contract
 * documented in docs/connectors/webhook.md. Every delivery is one JSON object with `operation`;
 * responses are validated too, and bounded, since the receiver is outside Lapse's trust.
 */
export const PAYLOAD_VERSION = 1;

const text = (max: number) => z.string().max(max);
const settingValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([text(8192), z.number(), z.boolean(), z.null(), z.array(settingValue).max(256), z.record(text(128), settingValue)]),
);

const envelope = {
  version: z.literal(PAYLOAD_VERSION),
  /** Unique per attempt (a retry gets a new one): receivers refuse ids they have seen. */
  deliveryId: text(64),
  sentAt: z.iso.datetime(),
  target: z.object({ name: text(63), labels: z.record(text(63), text(256)) }),
};

const grant = z.object({
  id: text(64),
  principalId: text(256),
  entitlement: text(63),
  /** The entitlement's `settings` from lapse.yaml, passed through for the receiver to interpret. */
  entitlementSettings: z.record(text(128), settingValue),
  durationMs: z.number().int().nonnegative(),
  notAfter: z.iso.datetime(),
  parameters: z.record(text(128), text(8192)),
});

const handle = z.record(text(128), settingValue);

const access = z.object({
  account: text(256),
  principalId: text(256),
  entitlement: text(63),
  grantId: text(64).nullable(),
});

/** A vaulted account the receiver manages, as `checkout.account` names it. */
const vaultAccount = text(256).min(1);

export const deliverySchema = z.discriminatedUnion('operation', [
  z.object({ ...envelope, operation: z.literal('check') }),
  z.object({ ...envelope, operation: z.literal('provision'), grant }),
  z.object({ ...envelope, operation: z.literal('revoke'), grant, handle: handle.nullable() }),
  z.object({ ...envelope, operation: z.literal('list') }),
  z.object({ ...envelope, operation: z.literal('remove'), access }),
  // The vault's operations (docs/vault.md): `password` is the new one for rotate, the one to try for verify.
  z.object({ ...envelope, operation: z.literal('rotate'), account: vaultAccount, password: text(1024) }),
  z.object({ ...envelope, operation: z.literal('verify'), account: vaultAccount, password: text(1024) }),
  z.object({ ...envelope, operation: z.literal('end_sessions'), account: vaultAccount }),
]);

export type Delivery = z.infer<typeof deliverySchema>;
export type Operation = Delivery['operation'];

/** `provision` answers `{ handle?, credentials? }`: the handle comes back on revoke, credentials go once to the requester. */
export const provisionResponseSchema = z
  .object({
    handle: handle.optional(),
    credentials: z
      .record(text(128), text(8192))
      .refine((c) => Object.keys(c).length <= 32, 'at most 32 credential fields')
      .optional(),
  })
  .strict();

/** `list` answers every access the system holds for the target's entitlements. */
export const listResponseSchema = z
  .object({
    access: z
      .array(
        z
          .object({
            account: text(256).min(1),
            principalId: text(256).min(1).optional(),
            entitlement: text(63).min(1),
            grantId: text(64).nullable().default(null),
          })
          .strict(),
      )
      .max(100_000),
  })
  .strict();

/** `verify` answers whether a login with the password works; any other answer is "cannot tell". */
export const verifyResponseSchema = z.object({ accepted: z.boolean() }).strict();
