import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { deliverySchema, type Delivery } from '../webhook-payload.js';
import { verifyWebhookSignature } from '../webhook-signature.js';

/**
 * A tiny system behind a webhook, as an integrator would write it: it checks every delivery with
 * verifyWebhookSignature and refuses delivery ids it has seen, validates the payload against the
 * published schema, and keeps API tokens per grant; `GET /whoami` with a token is its "login".
 */
export class TokenSystem {
  readonly server: Server;
  readonly accounts = new Map<string, { principalId: string; entitlement: string; grantId: string | null; token: string }>();
  readonly seen = new Set<string>();
  readonly received: { headers: IncomingMessage['headers']; body: string; delivery?: Delivery }[] = [];
  /** The vault's side: the password of each account it manages, and sessions open per account. */
  readonly passwords = new Map<string, string>();
  readonly sessions = new Map<string, number>();
  /** Answers for the next deliveries, in order: a status, or 'hang' (never answer). */
  readonly script: (number | 'hang')[] = [];

  constructor(private readonly secret: string) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const answer = (status: number, json: unknown = {}) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        if (req.method === 'GET' && req.url === '/whoami') {
          const token = req.headers.authorization?.replace(/^Bearer /, '');
          const account = [...this.accounts.entries()].find(([, a]) => a.token === token);
          return account ? answer(200, { account: account[0] }) : answer(401, { error: 'unknown token' });
        }
        const entry: (typeof this.received)[number] = { headers: req.headers, body: raw };
        this.received.push(entry);
        const scripted = this.script.shift();
        if (scripted === 'hang') return;
        if (scripted !== undefined) return answer(scripted, { error: `scripted ${scripted}` });
        // The receiver's own clock (tests fake Lapse's Date to send stale timestamps).
        const verified = verifyWebhookSignature(this.secret, req.headers, raw, { toleranceSec: 300, now: performance.timeOrigin + performance.now() });
        if (!verified.ok) return answer(401, { error: verified.reason });
        if (this.seen.has(verified.deliveryId)) return answer(409, { error: 'replayed delivery' });
        this.seen.add(verified.deliveryId);
        const delivery = deliverySchema.parse(JSON.parse(raw));
        entry.delivery = delivery;
        answer(200, this.handle(delivery));
      });
    });
  }

  private handle(delivery: Delivery): unknown {
    switch (delivery.operation) {
      case 'check':
        return {};
      case 'provision': {
        const account = `acct-${delivery.grant.id}`;
        const token = randomBytes(16).toString('hex');
        this.accounts.set(account, { principalId: delivery.grant.principalId, entitlement: delivery.grant.entitlement, grantId: delivery.grant.id, token });
        return { handle: { account }, credentials: { token } };
      }
      case 'revoke':
        this.accounts.delete(typeof delivery.handle?.account === 'string' ? delivery.handle.account : `acct-${delivery.grant.id}`);
        return {};
      case 'list':
        return {
          access: [...this.accounts.entries()].map(([account, a]) => ({ account, principalId: a.principalId, entitlement: a.entitlement, grantId: a.grantId })),
        };
      case 'remove':
        this.accounts.delete(delivery.access.account);
        return {};
      case 'rotate':
        this.passwords.set(delivery.account, delivery.password);
        return {};
      case 'verify': {
        const accepted = this.passwords.get(delivery.account) === delivery.password;
        if (accepted) this.sessions.set(delivery.account, (this.sessions.get(delivery.account) ?? 0) + 1);
        return { accepted };
      }
      case 'end_sessions':
        this.sessions.delete(delivery.account);
        return {};
    }
  }
}
