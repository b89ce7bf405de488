import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiServer, type ApiServer } from '../../api/index.js';
import { issueScimToken } from '../../auth/index.js';
import { parseConfig } from '../../config/index.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { authFor } from '../../../test/support/auth-service.js';
import { offline } from '../../../test/support/environment.js';
import { waitFor } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { PostgresConnector } from './postgres-connector.js';
import { PsqlSession, psql } from './testing/psql.js';
import { openPostgresScratch, type PostgresScratch } from './testing/scratch-server.js';

/**
 * The bar for deprovisioning: an IdP deactivates a person over SCIM (Okta's PATCH) and their grant
 * on the real PostgreSQL target is gone within seconds, their open session with it.
 */
if (!offline()) {
  describeEachStore('deprovisioning over SCIM on the real PostgreSQL target', ({ store }) => {
    let scratch: PostgresScratch;
    let engine: Engine;
    let app: ApiServer;
    const connector = new PostgresConnector();

    beforeAll(async () => {
      scratch = await openPostgresScratch();
      const yaml = `
version: 1
targets:
  app-db:
    connector: postgres
    settings: { host: "${scratch.host}", port: ${scratch.port}, database: ${scratch.database}, user: ${scratch.lapseUser} }
    entitlements:
      readonly: { settings: { roles: [${scratch.reader}] } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["app-db/readonly"]
    autoApprove: true
    duration: { default: 1h, max: 4h }
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
      engine = new Engine({ store: store(), config: parseConfig(yaml, 'deprovisioning.yaml', {}), connectors: connectorRegistry([connector]) });
      await engine.start();
      app = await buildApiServer({ engine, auth: authFor(engine), version: 'test' });
    });
    afterAll(async () => {
      await app?.close();
      await engine?.stop();
      await connector.close();
      await scratch?.close();
    });

    it("Okta's deactivation revokes the grant at the target within seconds and ends the open session", async () => {
      const scim = (await issueScimToken(store().db, { name: 'okta', createdBy: 'test', expiresInMs: null }, new Date())).token;
      const call = (method: 'POST' | 'PATCH', url: string, payload: object) =>
        app.inject({ method, url, headers: { authorization: `Bearer ${scim}`, 'content-type': 'application/scim+json' }, payload: JSON.stringify(payload) });
      const person = (
        await call('POST', '/scim/v2/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'fox@example.com', active: true })
      ).json() as {
        id: string;
      };
      await call('POST', '/scim/v2/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'sre', members: [{ value: person.id }] });

      const fox = { id: 'fox@example.com', kind: 'user' as const, groups: ['sre'] };
      const { request } = await engine.submit({
        principal: fox,
        target: 'app-db',
        entitlement: 'readonly',
        durationMs: 3_600_000,
        reason: 'deprovisioning test',
      });
      const grantId = (await getRequest(store().db, request.id))!.grantId!;
      await waitFor(
        () => getGrant(store().db, grantId),
        (g) => g?.status === 'active',
      );
      const credentials = await engine.fetchCredentials({ grantId, by: fox });
      const login = {
        host: credentials.host!,
        port: Number(credentials.port),
        database: credentials.database!,
        user: credentials.username!,
        password: credentials.password!,
      };
      const session = new PsqlSession(login);
      try {
        expect(await session.query("SELECT 'open ' || fact FROM facts;", 'open the vault')).toBe(true);

        const started = Date.now();
        const res = await call('PATCH', `/scim/v2/Users/${person.id}`, {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', value: { active: false } }],
        });
        expect(res.statusCode).toBe(200);
        await waitFor(
          () => getGrant(store().db, grantId),
          (g) => g?.status === 'revoked',
          5_000,
        );
        const elapsed = Date.now() - started;
        expect(elapsed).toBeLessThan(5_000);
        expect(await session.query("SELECT 'still ' || fact FROM facts;", 'still the vault', 3_000)).toBe(false);
        expect((await psql(login, 'SELECT 1')).code).not.toBe(0);
        const { rowCount } = await scratch.dba.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [login.user]);
        expect(rowCount).toBe(0);
      } finally {
        session.close();
      }
    });
  });
}
