import type pg from 'pg';
import { grantIdOfAccount } from '../shared/index.js';
import type { CurrentAccess } from '../types.js';
import type { RoleNote } from './roles.js';
import type { PostgresEntitlement, PostgresTarget } from './settings.js';

/**
 * listAccess: ephemeral roles (named lapse_<grant>, mapped back through the note Lapse wrote as
 * their COMMENT) and, for elevate-mode entitlements, every member of the entitlement's roles.
 * NB. Roles are cluster-wide while targets may share a cluster: an ephemeral role whose note names
 * another target is left to that target.
 */
export async function listRoleAccess(client: pg.PoolClient, target: PostgresTarget, entitlements: readonly PostgresEntitlement[]): Promise<CurrentAccess[]> {
  const access: CurrentAccess[] = [];
  const ephemeral = await client.query<{ name: string; note: string | null; member_of: string[] }>(
    `SELECT r.rolname AS name, shobj_description(r.oid, 'pg_authid') AS note,
            coalesce(array_agg(g.rolname::text) FILTER (WHERE g.rolname IS NOT NULL), '{}') AS member_of
       FROM pg_roles r
       LEFT JOIN pg_auth_members m ON m.member = r.oid
       LEFT JOIN pg_roles g ON g.oid = m.roleid
      WHERE r.rolname LIKE 'lapse\\_%'
      GROUP BY r.oid, r.rolname`,
  );
  for (const row of ephemeral.rows) {
    const grantId = grantIdOfAccount(row.name);
    if (!grantId) continue;
    const note = parseNote(row.note);
    if (note) {
      if (note.target === target.name && note.grant === grantId)
        access.push({ account: row.name, principalId: note.principal, entitlement: note.entitlement, grantId });
      continue;
    }
    // No note (written by hand, or stripped): guess the entitlement from the memberships.
    const match = entitlements.find((e) => e.mode === 'ephemeral' && e.roles.every((role) => row.member_of.includes(role)));
    if (match) access.push({ account: row.name, principalId: row.name, entitlement: match.name, grantId });
  }

  const elevate = entitlements.filter((e) => e.mode === 'elevate');
  if (elevate.length === 0) return access;
  const members = await client.query<{ role: string; member: string }>(
    `SELECT g.rolname AS role, r.rolname AS member
       FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
      WHERE g.rolname = ANY($1) AND r.rolname <> current_user`,
    [[...new Set(elevate.flatMap((e) => e.roles))]],
  );
  const principalOf = new Map(Object.entries(target.accounts).map(([principal, account]) => [account, principal]));
  for (const entitlement of elevate) {
    const accounts = new Set(members.rows.filter((m) => entitlement.roles.includes(m.role) && grantIdOfAccount(m.member) === null).map((m) => m.member));
    for (const account of accounts) access.push({ account, principalId: principalOf.get(account) ?? account, entitlement: entitlement.name, grantId: null });
  }
  return access;
}

function parseNote(text: string | null): RoleNote | null {
  if (!text) return null;
  try {
    const note = JSON.parse(text) as Partial<RoleNote>;
    const ok = note.lapse === 1 && [note.target, note.entitlement, note.principal, note.grant].every((v) => typeof v === 'string');
    return ok ? (note as RoleNote) : null;
  } catch {
    return null;
  }
}
