import { verifyWebhookSignature } from '../../connectors/webhook/index.js';
import { FakeServer, type FakeAnswer, type FakeCall } from './fake-server.js';

/**
 * An on-call receiver as an integrator would write one: it verifies `Lapse-Signature` with the
 * webhook connector's `verifyWebhookSignature`, refuses a delivery id it has seen, and answers
 * `{ onCall, services }` from its roster. A real one would ask its own scheduling system.
 */
export class OncallWebhookFake extends FakeServer {
  /** principal → the services they are on call for. */
  readonly roster = new Map<string, string[]>();
  private readonly seen = new Set<string>();

  constructor(private readonly secret: string) {
    super();
  }

  protected answer(call: FakeCall): FakeAnswer {
    const verified = verifyWebhookSignature(this.secret, call.headers, call.body);
    if (!verified.ok) return { status: 401, json: { error: verified.reason } };
    if (this.seen.has(verified.deliveryId)) return { status: 409, json: { error: 'replayed delivery' } };
    this.seen.add(verified.deliveryId);
    const question = JSON.parse(call.body) as { principal: string; services: string[] };
    const services = this.roster.get(question.principal) ?? [];
    const asked = question.services.length === 0 ? services : services.filter((s) => question.services.includes(s));
    return { status: 200, json: { onCall: asked.length > 0, services: asked } };
  }
}
