import type pg from 'pg';
import { LapseError } from '../../domain/errors.js';
import type { PostgresEntitlement, PostgresTarget } from './settings.js';

/**
 * checkTarget: what Lapse's own role needs, checked against the catalog so that the error names
 * the missing privilege and the statement that grants it.
 */
export async function checkPrivileges(client: pg.PoolClient, target: PostgresTarget, entitlements: readonly PostgresEntitlement[]): Promise<void> {
  const self = await client.query<{ name: string; superuser: boolean; createrole: boolean; signal: boolean; version: number }>(
    `SELECT current_user AS name, rolsuper AS superuser, rolcreaterole AS createrole,
            pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal,
            current_setting('server_version_num')::int AS version
       FROM pg_roles WHERE rolname = current_user`,
  );
  const me = self.rows[0]!;
  const quoted = client.escapeIdentifier(me.name);
  const missing: string[] = [];
  const fixes: string[] = [];
  if (me.version < 140_000) missing.push(`PostgreSQL 14 or later (this is ${Math.floor(me.version / 10_000)})`);
  if (!me.superuser && !me.createrole) {
    missing.push('CREATEROLE');
    fixes.push(`ALTER ROLE ${quoted} CREATEROLE;`);
  }
  if (!me.superuser && !me.signal) {
    missing.push('membership in pg_signal_backend (to end sessions on revoke)');
    fixes.push(`GRANT pg_signal_backend TO ${quoted};`);
  }

  const wanted = [...new Set(entitlements.flatMap((e) => e.roles))];
  const roles = await client.query<{ name: string; superuser: boolean; admin: boolean }>(
    `SELECT rolname AS name, rolsuper AS superuser, pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION') AS admin FROM pg_roles WHERE rolname = ANY($1)`,
    [wanted],
  );
  const found = new Map(roles.rows.map((row) => [row.name, row]));
  const absent = wanted.filter((name) => !found.has(name));
  for (const row of roles.rows) {
    if (me.superuser) continue;
    // Granting a superuser role takes a superuser; from PostgreSQL 16 any role takes ADMIN OPTION
    // on it (CREATEROLE alone no longer lets a role grant every other role).
    if (row.superuser) missing.push(`superuser (to grant the superuser role ${JSON.stringify(row.name)})`);
    else if (me.version >= 160_000 && !row.admin) {
      missing.push(`ADMIN OPTION on role ${JSON.stringify(row.name)}`);
      fixes.push(`GRANT ${client.escapeIdentifier(row.name)} TO ${quoted} WITH ADMIN OPTION;`);
    }
  }
  if (target.ownedObjects === 'reassign' && target.reassignOwnedTo && target.reassignOwnedTo !== me.name) {
    const heir = await client.query<{ usable: boolean }>(`SELECT pg_has_role(current_user, oid, 'USAGE') AS usable FROM pg_roles WHERE rolname = $1`, [
      target.reassignOwnedTo,
    ]);
    if (heir.rowCount === 0) absent.push(target.reassignOwnedTo);
    else if (!heir.rows[0]!.usable && !me.superuser) {
      missing.push(`the privileges of role ${JSON.stringify(target.reassignOwnedTo)} (settings.reassignOwnedTo)`);
      fixes.push(`GRANT ${client.escapeIdentifier(target.reassignOwnedTo)} TO ${quoted};`);
    }
  }

  if (absent.length > 0) {
    throw new LapseError('connector_failed', `PostgreSQL target ${target.name} has no role(s) ${absent.map((n) => JSON.stringify(n)).join(', ')}`, {
      where: `targets.${target.name}.entitlements`,
      hint: 'create the roles the entitlements name (CREATE ROLE ... NOLOGIN) or fix the names in lapse.yaml',
    });
  }
  if (missing.length > 0) {
    throw new LapseError('forbidden', `role ${JSON.stringify(me.name)} at PostgreSQL target ${target.name} lacks: ${missing.join('; ')}`, {
      where: `targets.${target.name}.settings.user`,
      hint: fixes.length > 0 ? `as a superuser run: ${fixes.join(' ')}` : 'see docs/connectors/postgres.md',
    });
  }
}
