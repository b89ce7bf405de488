import type { RowDataPacket } from 'mysql2';
import { grantIdOfAccount } from '../shared/index.js';
import type { CurrentAccess } from '../types.js';
import { formatAccount } from './accounts.js';
import { readRegistry } from './registry.js';
import type { MysqlConnection } from './sessions.js';
import type { MysqlEntitlement, MysqlTarget } from './settings.js';

/**
 * listAccess: ephemeral users (named lapse_<grant>, labelled through the registry) and, for
 * elevate-mode entitlements, the users holding the entitlement's role (without ADMIN OPTION: the
 * role's administrators, Lapse among them, are not access to reconcile).
 * NB. Users are server-wide while several targets may share a server: a user the registry gives
 * to another target is left to it.
 */
export async function listUserAccess(connection: MysqlConnection, target: MysqlTarget, entitlements: readonly MysqlEntitlement[]): Promise<CurrentAccess[]> {
  const access: CurrentAccess[] = [];
  const [users] = await connection.query<RowDataPacket[]>(`SELECT User AS user, Host AS host FROM mysql.user WHERE User LIKE 'lapse\\_%'`);
  const [mappings] = await connection.query<RowDataPacket[]>(
    `SELECT User AS user, Host AS host, Role AS role FROM mysql.roles_mapping WHERE Admin_option = 'N'`,
  );
  const labels = new Map((await readRegistry(connection, target.registryDatabase)).map((row) => [row.account, row]));
  for (const { user, host } of users as { user: string; host: string }[]) {
    const grantId = grantIdOfAccount(user);
    if (!grantId) continue;
    const label = labels.get(user);
    const account = formatAccount({ user, host });
    if (label) {
      if (label.target === target.name && label.grantId === grantId)
        access.push({ account, principalId: label.principal, entitlement: label.entitlement, grantId });
      continue;
    }
    // Unlabelled (made by hand, or the registry row was lost): guess the entitlement from its role.
    const match = entitlements.find(
      (e) => e.mode === 'ephemeral' && e.role !== undefined && mappings.some((m) => m.user === user && m.host === host && m.role === e.role),
    );
    if (match) access.push({ account, principalId: user, entitlement: match.name, grantId });
  }

  const principalOf = new Map(Object.entries(target.accounts).map(([principal, account]) => [account, principal]));
  for (const entitlement of entitlements.filter((e) => e.mode === 'elevate')) {
    for (const m of mappings as { user: string; host: string; role: string }[]) {
      if (m.role !== entitlement.role || grantIdOfAccount(m.user) !== null || m.user === target.user) continue;
      access.push({ account: formatAccount(m), principalId: principalOf.get(m.user) ?? m.user, entitlement: entitlement.name, grantId: null });
    }
  }
  return access;
}
