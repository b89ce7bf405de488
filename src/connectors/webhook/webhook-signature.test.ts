import { describe, expect, it } from 'vitest';
import { signatureHeader, verifyWebhookSignature } from './webhook-signature.js';

const secret = 'a'.repeat(64);
const now = Date.UTC(2026, 0, 1);
const t = Math.floor(now / 1000);
const body = JSON.stringify({ version: 1, deliveryId: 'dlv_1', operation: 'check' });
const headers = (overrides: Record<string, string | undefined> = {}) => ({
  'lapse-signature': signatureHeader(secret, t, body),
  'lapse-delivery': 'dlv_1',
  ...overrides,
});

describe('verifyWebhookSignature', () => {
  it('accepts a signed delivery within the tolerance, from a plain header object or a Headers', () => {
    expect(verifyWebhookSignature(secret, headers(), body, { now })).toEqual({ ok: true, deliveryId: 'dlv_1', timestampSec: t });
    expect(verifyWebhookSignature(secret, new Headers(headers()), Buffer.from(body), { now: new Date(now + 299_000) })).toMatchObject({ ok: true });
    expect(verifyWebhookSignature(secret, { 'Lapse-Signature': headers()['lapse-signature'], 'Lapse-Delivery': 'dlv_1' }, body, { now })).toMatchObject({
      ok: true,
    });
  });

  it('accepts any of several v1 signatures (a receiver rotating its secret)', () => {
    const both = `${signatureHeader('b'.repeat(64), t, body)},v1=${signatureHeader(secret, t, body).split('v1=')[1]}`;
    expect(verifyWebhookSignature(secret, headers({ 'lapse-signature': both }), body, { now })).toMatchObject({ ok: true });
  });

  it.each([
    ['a changed body', headers(), body.replace('check', 'provision'), 'signature does not match'],
    ['another secret', headers({ 'lapse-signature': signatureHeader('c'.repeat(64), t, body) }), body, 'signature does not match'],
    ['a changed timestamp', headers({ 'lapse-signature': headers()['lapse-signature'].replace(`t=${t}`, `t=${t + 1}`) }), body, 'signature does not match'],
    ['no signature', headers({ 'lapse-signature': undefined }), body, 'no Lapse-Signature header'],
    ['no delivery id', headers({ 'lapse-delivery': undefined }), body, 'no Lapse-Delivery header'],
    ['a delivery id other than the signed one', headers({ 'lapse-delivery': 'dlv_2' }), body, 'Lapse-Delivery does not match the signed body'],
    ['a malformed header', headers({ 'lapse-signature': 'v1=zz' }), body, 'malformed Lapse-Signature header'],
    ['a truncated signature', headers({ 'lapse-signature': headers()['lapse-signature'].slice(0, -2) }), body, 'malformed Lapse-Signature header'],
  ])('refuses %s', (_what, h, b, reason) => {
    expect(verifyWebhookSignature(secret, h, b, { now })).toEqual({ ok: false, reason });
  });

  it('refuses a timestamp too old or too far ahead', () => {
    expect(verifyWebhookSignature(secret, headers(), body, { now: now + 301_000 })).toEqual({
      ok: false,
      reason: 'timestamp is more than 300 s away from now',
    });
    expect(verifyWebhookSignature(secret, headers(), body, { now: now - 301_000 })).toMatchObject({ ok: false });
    expect(verifyWebhookSignature(secret, headers(), body, { now: now + 61_000, toleranceSec: 60 })).toEqual({
      ok: false,
      reason: 'timestamp is more than 60 s away from now',
    });
  });

  it('refuses a repeated header rather than guess which one counts', () => {
    expect(verifyWebhookSignature(secret, { ...headers(), 'lapse-delivery': ['dlv_1', 'dlv_1'] }, body, { now })).toEqual({
      ok: false,
      reason: 'no Lapse-Delivery header',
    });
  });
});
