import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack):
 * `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` under the app's signing secret, with the
 * timestamp within five minutes of now (older or newer is refused: a captured request cannot be
 * replayed later). Computed over the raw body as received, compared in constant time.
 */
export const SLACK_SIGNATURE_WINDOW_MS = 5 * 60_000;

export type SignatureCheck = { readonly result: 'valid'; readonly secret: number } | { readonly result: 'missing' | 'malformed' | 'expired' | 'mismatch' };

export function slackSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

/** Checks a request's signature against the signing secrets (one per configured Slack app); says which matched. */
export function checkSlackSignature(
  secrets: readonly string[],
  headers: { readonly timestamp: string | undefined; readonly signature: string | undefined },
  rawBody: string,
  nowMs: number,
): SignatureCheck {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) return { result: 'missing' };
  if (!/^\d{1,12}$/.test(timestamp) || !/^v0=[0-9a-f]{64}$/.test(signature)) return { result: 'malformed' };
  if (Math.abs(nowMs - Number(timestamp) * 1000) > SLACK_SIGNATURE_WINDOW_MS) return { result: 'expired' };
  const given = Buffer.from(signature, 'utf8');
  let match = -1;
  secrets.forEach((secret, i) => {
    // NB. Every secret is tried, whatever matched: the time taken says nothing about which one did.
    const expected = Buffer.from(slackSignature(secret, timestamp, rawBody), 'utf8');
    if (expected.length === given.length && timingSafeEqual(expected, given)) match = i;
  });
  return match >= 0 ? { result: 'valid', secret: match } : { result: 'mismatch' };
}
