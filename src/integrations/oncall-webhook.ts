import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { OncallWebhookConfig } from '../config/types.js';
import { signatureHeader } from '../connectors/webhook/index.js';
import { NAME_PATTERN } from '../domain/input-schemas.js';
import { callJson, shapeProblem } from './http.js';

/**
 * The generic on-call source: Lapse POSTs `{ version, deliveryId, sentAt, principal, services }`
 * signed exactly like webhook connector deliveries (`Lapse-Signature: t=…,v1=HMAC-SHA256`,
 * `Lapse-Delivery`), so a receiver verifies it with the same code; the answer is
 * `{ onCall: boolean, services: [names] }`. `services` in the question are the ones the requested
 * target is labelled with (empty: "any").
 */
export const ONCALL_PAYLOAD_VERSION = 1;

const answer = z.object({
  onCall: z.boolean(),
  services: z.array(z.string().max(63).regex(NAME_PATTERN)).max(500).default([]),
});

export async function webhookOncall(
  config: OncallWebhookConfig,
  principalId: string,
  services: readonly string[],
  signal: AbortSignal,
): Promise<{ active: boolean; services: string[] }> {
  const deliveryId = `dlv_${randomBytes(16).toString('hex')}`;
  const now = new Date();
  const body = JSON.stringify({ version: ONCALL_PAYLOAD_VERSION, deliveryId, sentAt: now.toISOString(), principal: principalId, services });
  const headers = { 'lapse-signature': signatureHeader(config.secret, Math.floor(now.getTime() / 1000), body), 'lapse-delivery': deliveryId };
  const { json } = await callJson(config, { method: 'POST', headers, body, secrets: [config.secret] }, signal);
  const parsed = answer.safeParse(json);
  if (!parsed.success) throw shapeProblem('the on-call webhook answer', parsed.error.issues);
  if (!parsed.data.onCall) return { active: false, services: [] };
  // "On call" naming no service means on call for what was asked.
  return { active: true, services: parsed.data.services.length > 0 ? [...new Set(parsed.data.services)].sort() : [...services] };
}
