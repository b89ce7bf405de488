import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createUser, issueApiToken, type TokenScope } from '../../src/auth/index.js';
import { buildApiServer, type ApiServer } from '../../src/api/index.js';
import type { Store } from '../../src/store/index.js';
import { startEngine, type TestEngine } from './engine.js';
import { authFor } from './auth-service.js';

/** The cast of test/support/engine.ts as real users with API tokens, plus an auditor. */
const CAST = {
  alice: ['sre', 'oncall'],
  bob: ['sre-leads'],
  carol: ['security'],
  mallory: ['contractors'],
  root: ['admins'],
  auditor: [],
} as const;

export type CastMember = keyof typeof CAST;

export interface TestApi {
  readonly t: TestEngine;
  readonly app: ApiServer;
  /** Each member's token with every scope their role allows (read, request, approve; admin for root). */
  readonly tokens: Record<CastMember, string>;
  /** A token for `who` with only these scopes. */
  tokenWith(who: CastMember, scopes: TokenScope[]): Promise<string>;
  /** Calls the API as `who` (or anonymously with null). */
  call(who: CastMember | null, options: InjectOptions): Promise<LightMyRequestResponse>;
  stop(): Promise<void>;
}

export async function startTestApi(store: Store, options: { yaml?: string } = {}): Promise<TestApi> {
  const t = await startEngine(store, options.yaml ? { yaml: options.yaml } : {});
  const app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
  const now = new Date();
  const users = new Map<CastMember, string>();
  for (const [name, groups] of Object.entries(CAST) as [CastMember, readonly string[]][]) {
    users.set(name, (await createUser(store.db, { name, groups: [...groups] }, now)).id);
  }
  const tokenWith = async (who: CastMember, scopes: TokenScope[]) =>
    (await issueApiToken(store.db, { userId: users.get(who)!, name: 'test', scopes, expiresInMs: 3_600_000 }, new Date())).token;
  const tokens = {} as Record<CastMember, string>;
  for (const name of users.keys()) tokens[name] = await tokenWith(name, name === 'root' ? ['admin'] : ['read', 'request', 'approve']);
  return {
    t,
    app,
    tokens,
    tokenWith,
    call: (who, request) => app.inject({ ...request, headers: { ...(who ? { authorization: `Bearer ${tokens[who]}` } : {}), ...request.headers } }),
    stop: async () => {
      await app.close();
      await t.stop();
    },
  };
}
