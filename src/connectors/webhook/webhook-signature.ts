import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signing of webhook deliveries, and the check receivers run. The signed content is
 * `<unix seconds>.<raw body>`, so a receiver can refuse a stale or replayed delivery: the
 * timestamp bounds how old a request may be, and the delivery id (in the body and in
 * `Lapse-Delivery`) is unique per attempt, so remembering ids for the tolerance window makes each
 * request usable once.
 *
 *   Lapse-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
 *   Lapse-Delivery: dlv_2b7c…
 */
export const SIGNATURE_HEADER = 'lapse-signature';
export const DELIVERY_HEADER = 'lapse-delivery';
export const DEFAULT_TOLERANCE_SEC = 300;

export function signatureHeader(secret: string, timestampSec: number, body: string): string {
  return `t=${timestampSec},v1=${hmac(secret, timestampSec, body)}`;
}

type HeaderBag = { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyOptions {
  /** How far the timestamp may be from `now`, either way (default 300 s). */
  readonly toleranceSec?: number;
  /** The current time (default: the clock). */
  readonly now?: Date | number;
}

export type Verification = { readonly ok: true; readonly deliveryId: string; readonly timestampSec: number } | { readonly ok: false; readonly reason: string };

/**
 * Checks a delivery's signature, its age and that `Lapse-Delivery` is the delivery id the signed
 * body carries. It keeps no state: refusing a delivery id seen before (within the tolerance) is
 * the receiver's part, and is what makes a captured request useless.
 */
export function verifyWebhookSignature(secret: string, headers: HeaderBag, body: string | Uint8Array, options: VerifyOptions = {}): Verification {
  const raw = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const signature = header(headers, SIGNATURE_HEADER);
  const deliveryId = header(headers, DELIVERY_HEADER);
  if (!signature) return { ok: false, reason: 'no Lapse-Signature header' };
  if (!deliveryId) return { ok: false, reason: 'no Lapse-Delivery header' };
  const parts = signature.split(',').map((p) => p.trim().split('=') as [string, string | undefined]);
  const timestamp = parts.find(([k]) => k === 't')?.[1];
  const candidates = parts.filter(([k, v]) => k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => v!);
  if (!timestamp || !/^\d{1,12}$/.test(timestamp) || candidates.length === 0) return { ok: false, reason: 'malformed Lapse-Signature header' };
  const timestampSec = Number(timestamp);
  const expected = Buffer.from(hmac(secret, timestampSec, raw), 'hex');
  if (!candidates.some((c) => timingSafeEqual(Buffer.from(c, 'hex'), expected))) return { ok: false, reason: 'signature does not match' };
  const nowMs = options.now === undefined ? Date.now() : typeof options.now === 'number' ? options.now : options.now.getTime();
  const tolerance = options.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  if (Math.abs(nowMs / 1000 - timestampSec) > tolerance) return { ok: false, reason: `timestamp is more than ${tolerance} s away from now` };
  let bodyDelivery: unknown;
  try {
    bodyDelivery = (JSON.parse(raw) as { deliveryId?: unknown }).deliveryId;
  } catch {
    return { ok: false, reason: 'body is not JSON' };
  }
  if (bodyDelivery !== deliveryId) return { ok: false, reason: 'Lapse-Delivery does not match the signed body' };
  return { ok: true, deliveryId, timestampSec };
}

function hmac(secret: string, timestampSec: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex');
}

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const bag = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const key = Object.keys(bag).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : bag[key];
  return Array.isArray(value) ? undefined : (value as string | undefined);
}
