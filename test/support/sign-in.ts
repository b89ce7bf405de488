import { sql } from 'kysely';
import { createUser, setPassword } from '../../src/auth/index.js';
import type { Store } from '../../src/store/index.js';
import { TEST_CONFIG } from './engine.js';

/** TEST_CONFIG plus an `auth:` section (local accounts; OIDC when given). */
export function configWithAuth(auth: string): string {
  return `${TEST_CONFIG}\nauth:\n${auth.replace(/^/gm, '  ')}\n`;
}

export const PASSWORD = 'correct horse battery staple';

/** A local user with a password (the cast of test/support/engine.ts: alice, bob, root...). */
export async function createLocalUser(store: Store, name: string, groups: string[], password = PASSWORD) {
  const user = await createUser(store.db, { name, groups }, new Date());
  await setPassword(store.db, user.id, password);
  return user;
}

/** The `lapse_session` cookie a sign-in response set. */
export function sessionCookieFrom(response: { cookies: readonly { name: string; value: string }[] }, name = 'lapse_session'): string {
  const cookie = response.cookies.find((c) => c.name === name);
  if (!cookie || cookie.value === '') throw new Error(`the response set no ${name} cookie`);
  return cookie.value;
}

export async function countAudit(store: Store, action: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_events WHERE payload LIKE ${`%"action":"${action}"%`}`.execute(store.db);
  return Number(rows[0]!.n);
}
