import type pg from 'pg';
import { LapseError } from '../../domain/errors.js';
import { scramVerifier } from './scram.js';
import type { PostgresEntitlement, PostgresTarget } from './settings.js';

/**
 * The statements behind provision and revoke. Every identifier goes through node-postgres'
 * `escapeIdentifier` and every literal through `escapeLiteral` (utility statements such as
 * CREATE ROLE take no bind parameters); values in ordinary queries are bind parameters.
 */

/** What Lapse writes as the COMMENT of an ephemeral role, so listAccess can map it back. */
export interface RoleNote {
  readonly lapse: 1;
  readonly target: string;
  readonly entitlement: string;
  readonly principal: string;
  readonly grant: string;
}

export interface EphemeralRole {
  readonly account: string;
  readonly password: string;
  readonly validUntil: Date;
  readonly note: RoleNote;
}

/** Creates the role, or on a repeat sets a fresh password and expiry; then makes it a member of the entitlement's roles. */
export async function createOrRefreshRole(client: pg.PoolClient, entitlement: PostgresEntitlement, role: EphemeralRole): Promise<void> {
  const id = client.escapeIdentifier(role.account);
  // NB. The server receives a SCRAM verifier, never the password: nothing readable reaches its logs.
  const password = client.escapeLiteral(scramVerifier(role.password));
  const validUntil = client.escapeLiteral(role.validUntil.toISOString());
  const limit = entitlement.connectionLimit ?? -1;
  for (let attempt = 1; ; attempt++) {
    await client.query('BEGIN');
    try {
      const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role.account])).rowCount! > 0;
      await client.query(
        exists
          ? `ALTER ROLE ${id} WITH LOGIN PASSWORD ${password} VALID UNTIL ${validUntil} CONNECTION LIMIT ${limit}`
          : `CREATE ROLE ${id} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD ${password} VALID UNTIL ${validUntil} CONNECTION LIMIT ${limit}`,
      );
      await client.query(`COMMENT ON ROLE ${id} IS ${client.escapeLiteral(JSON.stringify(role.note))}`);
      for (const granted of entitlement.roles) await client.query(`GRANT ${client.escapeIdentifier(granted)} TO ${id}`);
      await client.query('COMMIT');
      return;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      // Two provisions of one grant raced (a retry after a lost reply): the second one updates.
      const raced = ['23505', '42710'].includes((error as { code?: string }).code ?? '');
      if (!raced || attempt >= 2) throw error;
    }
  }
}

/** Moves an ephemeral role's VALID UNTIL (on activation, after an extension). Succeeds if the role is gone (revoked meanwhile). */
export async function extendRoleValidity(client: pg.PoolClient, account: string, validUntil: Date): Promise<void> {
  const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [account])).rowCount! > 0;
  if (!exists) return;
  await client.query(`ALTER ROLE ${client.escapeIdentifier(account)} VALID UNTIL ${client.escapeLiteral(validUntil.toISOString())}`);
}

/**
 * Ends the sessions logged in as `account` and waits (up to 5 s each) until they are gone.
 * Needs pg_signal_backend (or superuser). Returns how many were ended.
 */
export async function terminateSessions(client: pg.PoolClient, account: string): Promise<number> {
  const { rows } = await client.query<{ ended: boolean }>(
    'SELECT pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
    [account],
  );
  return rows.length;
}

/**
 * Revoke of an ephemeral role, safe to repeat at any point: no new logins (NOLOGIN), end its
 * sessions, deal with what it owns, drop it.
 */
export async function dropEphemeralRole(client: pg.PoolClient, target: PostgresTarget, account: string): Promise<void> {
  const id = client.escapeIdentifier(account);
  const found = await client.query<{ oid: number }>('SELECT oid FROM pg_roles WHERE rolname = $1', [account]);
  const oid = found.rows[0]?.oid;
  if (oid !== undefined) await client.query(`ALTER ROLE ${id} NOLOGIN`);
  // NB. Even when the role is already gone (a repeat after a crash), a session it opened may
  // still run: dropping a role does not end its sessions.
  await terminateSessions(client, account);
  if (oid === undefined) return;

  const dependencies = await client.query<{ owned: string; other: string; databases: string[] | null }>(
    `SELECT count(*) FILTER (WHERE deptype = 'o') AS owned, count(*) FILTER (WHERE deptype <> 'o') AS other,
            array_agg(DISTINCT d.datname::text) FILTER (WHERE d.datname IS NOT NULL) AS databases
       FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid
      WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = $1`,
    [oid],
  );
  const { owned, other, databases } = dependencies.rows[0]!;
  if (Number(owned) > 0 && target.ownedObjects === 'refuse') {
    // Access is already gone (no login, no sessions); take its memberships too, then refuse.
    await revokeAllMemberships(client, oid, id);
    throw new LapseError(
      'connector_failed',
      `ephemeral role ${account} at PostgreSQL target ${target.name} owns ${owned} object(s) in ${(databases ?? []).join(', ') || 'this cluster'}; it can no longer log in, but it is not dropped`,
      {
        where: `targets.${target.name}.settings.ownedObjects`,
        hint: `move or drop those objects (REASSIGN OWNED BY ${id} TO <role>; DROP OWNED BY ${id}), or set ownedObjects: reassign; revoke is retried until the role is gone`,
      },
    );
  }
  if (Number(owned) + Number(other) > 0) {
    // NB. REASSIGN/DROP OWNED need the privileges of the role; a CREATEROLE role may grant itself
    // membership in a role it does not have (PostgreSQL 15). Both act on this database only.
    await client.query(`GRANT ${id} TO CURRENT_USER`);
    const heir = target.reassignOwnedTo ? client.escapeIdentifier(target.reassignOwnedTo) : 'CURRENT_USER';
    await client.query(`REASSIGN OWNED BY ${id} TO ${heir}`);
    await client.query(`DROP OWNED BY ${id}`);
  }
  try {
    await client.query(`DROP ROLE IF EXISTS ${id}`);
  } catch (error) {
    if ((error as { code?: string }).code !== '2BP01') throw error;
    await revokeAllMemberships(client, oid, id);
    const detail = String((error as { detail?: string }).detail ?? '').slice(0, 500);
    throw new LapseError(
      'connector_failed',
      `ephemeral role ${account} at PostgreSQL target ${target.name} still owns objects or privileges in another database; it can no longer log in, but it is not dropped (${detail})`,
      {
        where: `targets.${target.name}.settings.database`,
        hint: `in each database listed run REASSIGN OWNED BY ${id} TO <role>; DROP OWNED BY ${id}; revoke is retried until the role is gone`,
      },
    );
  }
}

async function revokeAllMemberships(client: pg.PoolClient, oid: number, id: string): Promise<void> {
  const { rows } = await client.query<{ rolname: string }>('SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = $1', [
    oid,
  ]);
  for (const { rolname } of rows) await client.query(`REVOKE ${client.escapeIdentifier(rolname)} FROM ${id}`);
}

/** Elevate mode: makes an existing role a member of the entitlement's roles. */
export async function grantMembership(client: pg.PoolClient, target: PostgresTarget, entitlement: PostgresEntitlement, account: string): Promise<void> {
  const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [account])).rowCount! > 0;
  if (!exists) {
    throw new LapseError('connector_failed', `role ${JSON.stringify(account)} does not exist at PostgreSQL target ${target.name}, so it cannot be elevated`, {
      where: `targets.${target.name}.entitlements.${entitlement.name}`,
      hint: `create the role, or map the principal to an existing role in targets.${target.name}.settings.accounts`,
    });
  }
  const member = client.escapeIdentifier(account);
  for (const role of entitlement.roles) await client.query(`GRANT ${client.escapeIdentifier(role)} TO ${member}`);
}

/**
 * Elevate mode revoke: takes the memberships away, then ends the account's sessions. The
 * sessions must go too: one that ran `SET ROLE <role>` keeps acting as that role whatever its
 * memberships are now.
 */
export async function revokeMembership(client: pg.PoolClient, target: PostgresTarget, entitlement: PostgresEntitlement, account: string): Promise<void> {
  const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [account])).rowCount! > 0;
  if (exists) {
    const member = client.escapeIdentifier(account);
    for (const role of entitlement.roles) {
      try {
        await client.query(`REVOKE ${client.escapeIdentifier(role)} FROM ${member}`);
      } catch (error) {
        // A role removed from the server meanwhile means there is no membership left to take.
        if ((error as { code?: string }).code !== '42704') throw error;
      }
    }
  }
  if (entitlement.terminateSessions) await terminateSessions(client, account);
  // NB. From PostgreSQL 16 a REVOKE only takes back what this grantor granted and merely warns
  // about the rest (e.g. a membership a DBA granted): check instead of trusting the statement.
  const left = await client.query<{ role: string }>(
    'SELECT g.rolname AS role FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1 AND g.rolname = ANY($2)',
    [account, entitlement.roles],
  );
  if (left.rowCount! > 0) {
    throw new LapseError(
      'connector_failed',
      `role ${JSON.stringify(account)} at PostgreSQL target ${target.name} is still a member of ${left.rows.map((r) => JSON.stringify(r.role)).join(', ')} after REVOKE`,
      {
        where: `targets.${target.name}.entitlements.${entitlement.name}`,
        hint: 'another role granted that membership and only it (or a superuser) can take it back: REVOKE ... GRANTED BY <grantor>',
      },
    );
  }
}
