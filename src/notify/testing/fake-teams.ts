import { makeTestPki, type TestPki } from '../../connectors/azure-rbac/testing/test-ca.js';
import { startReceiver, type TestReceiver } from './webhook-receiver.js';

/**
 * A local stand-in for a Teams Workflows webhook over HTTPS (a private CA the test trusts): it
 * refuses what Teams refuses (400 for a body that is not a message with an Adaptive Card) and
 * answers 202 like Workflows; a test queues 429s with Retry-After to see throttling honoured.
 */
export interface FakeTeams extends TestReceiver {
  readonly pki: TestPki;
}

/** Why Teams would refuse this body, or undefined when the card is well-formed. */
export function cardProblem(body: string): string | undefined {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return 'BadRequest: the body is not JSON';
  }
  const m = message as { type?: unknown; attachments?: { contentType?: unknown; content?: Record<string, unknown> }[] };
  if (m.type !== 'message' || !Array.isArray(m.attachments) || m.attachments.length === 0) return 'BadRequest: expected a message with attachments';
  const card = m.attachments[0]!;
  if (card.contentType !== 'application/vnd.microsoft.card.adaptive') return 'BadRequest: attachment is not an Adaptive Card';
  const content = card.content ?? {};
  if (content.type !== 'AdaptiveCard') return 'BadRequest: content.type must be AdaptiveCard';
  if (typeof content.version !== 'string' || !/^1\.[0-6]$/.test(content.version)) return 'BadRequest: unsupported card version';
  if (!Array.isArray(content.body) || content.body.length === 0) return 'BadRequest: the card has no body';
  for (const action of (content.actions as { type?: unknown; url?: unknown }[] | undefined) ?? []) {
    if (action.type !== 'Action.OpenUrl' || typeof action.url !== 'string' || !action.url.startsWith('https://')) return 'BadRequest: unsupported action';
  }
  return undefined;
}

export async function startFakeTeams(pki: TestPki = makeTestPki()): Promise<FakeTeams> {
  const receiver = await startReceiver({ key: pki.serverKeyPem, cert: pki.serverCertPem });
  receiver.answers = [{ status: 202 }];
  receiver.check = (call) => cardProblem(call.body);
  return Object.assign(receiver, { pki, url: receiver.url.replace('/hooks/lapse', '/workflows/abc/triggers/manual/paths/invoke?sig=s3cr3t') });
}
