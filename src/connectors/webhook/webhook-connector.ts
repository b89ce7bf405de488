import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, PasswordRotation, ProvisionResult } from '../types.js';
import { send } from './outbound-http.js';
import { webhookPasswordRotation } from './password-rotation.js';
import { listResponseSchema, PAYLOAD_VERSION, provisionResponseSchema, verifyResponseSchema, type Operation } from './webhook-payload.js';
import { acceptedParameters, parseTarget, targetProblems, type WebhookTarget } from './webhook-settings.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, signatureHeader } from './webhook-signature.js';

/**
 * Hands access decisions to a system Lapse does not know: each operation is a signed JSON POST to
 * the target's URL (schema in webhook-payload.ts, documented in docs/connectors/webhook.md).
 * Server errors, timeouts and network failures are retried with backoff until `maxAttempts` or
 * the call's deadline; a 4xx answer is final, since repeating the same request cannot fix it.
 */
export class WebhookConnector implements Connector {
  readonly type = 'webhook';
  /** The vault's `webhook` rotator: the receiver changes and checks the password (password-rotation.ts). */
  readonly rotation: PasswordRotation = webhookPasswordRotation({
    deliver,
    parseVerify: (target, body) => parseAnswer(target, 'verify', verifyResponseSchema, body),
  });

  validateSettings(target: TargetConfig): string[] {
    return targetProblems(target);
  }

  validateParameters(_target: TargetConfig, entitlement: EntitlementConfig, parameters: Readonly<Record<string, string>>): string[] {
    const accepted = acceptedParameters(entitlement);
    return Object.entries(parameters).flatMap(([name, value]) => {
      if (!accepted.includes(name))
        return [`parameters.${name.slice(0, 64)}: entitlement ${entitlement.name} takes ${accepted.length > 0 ? accepted.join(', ') : 'no parameters'}`];
      if (value.length > 8192) return [`parameters.${name}: longer than 8192 characters`];
      return [];
    });
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    await deliver(target, 'check', {}, signal);
  }

  accessKey(grant: GrantSpec): string {
    const shared = grant.target.settings.accessKey === 'principal';
    return shared ? `${grant.target.name}/${grant.entitlement.name}/${grant.principalId}` : `${grant.target.name}/${grant.grantId}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const body = await deliver(grant.target, 'provision', { grant: grantPayload(grant) }, signal);
    const answer = parseAnswer(grant.target, 'provision', provisionResponseSchema, body);
    return { handle: answer.handle ?? {}, ...(answer.credentials ? { credentials: answer.credentials } : {}) };
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    await deliver(grant.target, 'revoke', { grant: grantPayload(grant), handle }, signal);
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const answer = parseAnswer(target, 'list', listResponseSchema, await deliver(target, 'list', {}, signal));
    return answer.access.map((a) => ({ account: a.account, principalId: a.principalId ?? a.account, entitlement: a.entitlement, grantId: a.grantId }));
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const { account, principalId, entitlement, grantId } = access;
    await deliver(target, 'remove', { access: { account, principalId, entitlement, grantId } }, signal);
  }
}

function grantPayload(grant: GrantSpec) {
  return {
    id: grant.grantId,
    principalId: grant.principalId,
    entitlement: grant.entitlement.name,
    entitlementSettings: grant.entitlement.settings,
    durationMs: grant.durationMs,
    notAfter: grant.notAfter.toISOString(),
    parameters: grant.parameters,
  };
}

/** Answers that mean "try again later"; any other 4xx is final. */
const RETRYABLE = (status: number) => status >= 500 || status === 408 || status === 429;
const BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;

/** Delivers one operation; resolves with the body of the 2xx answer. */
async function deliver(target: TargetConfig, operation: Operation, fields: Record<string, unknown>, signal: AbortSignal): Promise<string> {
  const settings = parseTarget(target);
  let lastFailure = 'not attempted';
  for (let attempt = 1; attempt <= settings.maxAttempts; attempt++) {
    if (signal.aborted) throw deadline(target, operation, attempt - 1, lastFailure);
    const outcome = await attemptOnce(settings, target, operation, fields, signal);
    if (outcome.ok) return outcome.body;
    lastFailure = outcome.failure;
    if (!outcome.retry) {
      throw new LapseError('connector_failed', `webhook target ${target.name}: ${operation} was refused: ${lastFailure}`, {
        where: `targets.${target.name}.settings.url`,
        hint: outcome.hint ?? 'the receiver answered 4xx; repeating the same request will not help',
      });
    }
    if (attempt < settings.maxAttempts && !(await pause(backoff(attempt), signal))) throw deadline(target, operation, attempt, lastFailure);
  }
  throw new LapseError('connector_failed', `webhook target ${target.name}: ${operation} failed after ${settings.maxAttempts} attempts; last: ${lastFailure}`, {
    where: `targets.${target.name}.settings.url`,
    hint: 'check that the receiver is up and answers 2xx',
  });
}

type Outcome = { ok: true; body: string } | { ok: false; retry: boolean; failure: string; hint?: string };

async function attemptOnce(
  settings: WebhookTarget,
  target: TargetConfig,
  operation: Operation,
  fields: Record<string, unknown>,
  signal: AbortSignal,
): Promise<Outcome> {
  // NB. A fresh delivery id and timestamp per attempt: receivers refuse ids they have seen, so a
  // retry must not look like a replay; the operation itself is idempotent by grant id.
  const deliveryId = `dlv_${randomBytes(16).toString('hex')}`;
  const now = new Date();
  const body = JSON.stringify({
    version: PAYLOAD_VERSION,
    deliveryId,
    sentAt: now.toISOString(),
    target: { name: target.name, labels: target.labels },
    operation,
    ...fields,
  });
  const headers = {
    'content-type': 'application/json',
    [SIGNATURE_HEADER]: signatureHeader(settings.secret, Math.floor(now.getTime() / 1000), body),
    [DELIVERY_HEADER]: deliveryId,
  };
  const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(settings.timeoutMs)]);
  try {
    const response = await send(settings.endpoint, { method: 'POST', headers, body, signal: attemptSignal });
    if (response.status >= 200 && response.status < 300) return { ok: true, body: response.body };
    const failure = `HTTP ${response.status}${excerpt(response.body)}`;
    const hint =
      response.status === 401 || response.status === 403
        ? 'the receiver refused the request: check that both sides use the same secret and that clocks agree'
        : undefined;
    return { ok: false, retry: RETRYABLE(response.status), failure, ...(hint ? { hint } : {}) };
  } catch (error) {
    const timedOut = !signal.aborted && attemptSignal.aborted;
    return { ok: false, retry: true, failure: timedOut ? `no answer within ${settings.timeoutMs} ms` : (error as Error).message };
  }
}

function parseAnswer<T extends z.ZodType>(target: TargetConfig, operation: Operation, schema: T, body: string): z.infer<T> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new LapseError('connector_failed', `webhook target ${target.name}: the answer to ${operation} is not JSON`, {
      where: `targets.${target.name}.settings.url`,
      hint: 'see docs/connectors/webhook.md for the response format',
    });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw new LapseError('connector_failed', `webhook target ${target.name}: the answer to ${operation} does not match the schema (${problems.join('; ')})`, {
      where: `targets.${target.name}.settings.url`,
      hint: 'see docs/connectors/webhook.md for the response format',
    });
  }
  return parsed.data;
}

function backoff(attempt: number): number {
  const base = Math.min(BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  return base / 2 + Math.random() * (base / 2);
}

/** Sleeps `ms`; false if the deadline passed first. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve(true);
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', stop, { once: true });
  });
}

function deadline(target: TargetConfig, operation: Operation, attempts: number, lastFailure: string): LapseError {
  return new LapseError(
    'connector_timeout',
    `webhook target ${target.name}: ${operation} did not succeed before the deadline (${attempts} attempt${attempts === 1 ? '' : 's'}; last: ${lastFailure})`,
    { where: `targets.${target.name}.settings.url` },
  );
}

/** A short, printable piece of the receiver's answer for the error message. */
function excerpt(body: string): string {
  const clean = body
    .replace(/[^\x20-\x7e]/g, ' ')
    .trim()
    .slice(0, 200);
  return clean ? `: ${clean}` : '';
}
