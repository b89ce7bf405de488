import { randomBytes } from 'node:crypto';
import type { EntitlementConfig, TargetConfig } from '../../../config/types.js';

/**
 * A throw-away vhost on the real RabbitMQ for benchmarks (and tests that want one), with Lapse's
 * own management user tagged administrator (no vhost permissions), as docs/connectors/rabbitmq.md
 * says; close() deletes the vhost (and with it every permission on it) and the users.
 */
export interface RabbitScratch {
  readonly vhost: string;
  readonly api: string;
  /** Lapse's management user and its password. */
  readonly lapseUser: string;
  readonly password: string;
  /** A management API call as the broker's administrator (the operator's view); users it creates are not cleaned up. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  target(name: string, entitlements: Record<string, Record<string, unknown>>): TargetConfig;
  close(): Promise<void>;
}

export async function openRabbitScratch(api = process.env.LAPSE_TEST_RABBITMQ_API ?? 'http://127.0.0.1:15672'): Promise<RabbitScratch> {
  const suffix = randomBytes(4).toString('hex');
  const vhost = `lapse-scratch-${suffix}`;
  const lapseUser = `lapse-admin-${suffix}`;
  const password = randomBytes(16).toString('hex');
  const operator = process.env.LAPSE_TEST_RABBITMQ_USER ?? 'guest';
  const auth = `Basic ${Buffer.from(`${operator}:${process.env.LAPSE_TEST_RABBITMQ_PASSWORD ?? 'guest'}`).toString('base64')}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }).catch((error: unknown) => {
      throw new Error(
        `the RabbitMQ management API is not reachable at ${api} (${(error as Error).message}); enable it (rabbitmq-plugins enable rabbitmq_management) or set LAPSE_TEST_RABBITMQ_API`,
      );
    });
    if (response.status >= 400 && response.status !== 404) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
    return response;
  };
  await call('PUT', `/api/vhosts/${encodeURIComponent(vhost)}`);
  // NB. The management API gives a vhost's creator full permissions on it: standing access this
  // scratch does not want (reconciliation would rightly report it).
  await call('DELETE', `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(operator)}`);
  await call('PUT', `/api/users/${lapseUser}`, { password, tags: 'administrator' });
  return {
    vhost,
    api,
    lapseUser,
    password,
    admin: call,
    target(name, entitlements) {
      const map = new Map<string, EntitlementConfig>(
        Object.entries(entitlements).map(([e, settings]) => [e, { name: e, target: name, description: '', settings: { vhost, ...settings }, labels: {} }]),
      );
      return { name, connector: 'rabbitmq', description: '', settings: { url: api, username: lapseUser, password }, labels: {}, entitlements: map };
    },
    async close() {
      await call('DELETE', `/api/vhosts/${encodeURIComponent(vhost)}`);
      await call('DELETE', `/api/users/${lapseUser}`);
    },
  };
}
