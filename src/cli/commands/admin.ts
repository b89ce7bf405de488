import type { Command } from 'commander';
import { parseDuration } from '../../domain/duration.js';
import { LapseError } from '../../domain/errors.js';
import { addLocationOptions, openStoreAt, resolveLocation, type Store } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';
import { readSecretFromStdin } from '../stdin.js';

/**
 * Offline administration straight on the database, for bootstrap and automation (the server
 * need not run). Every change is audited with actor `cli:<os user>`.
 */
/** Who acts offline: the operating-system user, as `cli:<name>` (never a Lapse user name, which has no colon). */
const offlineActor = () => `cli:${process.env.USER ?? 'unknown'}`;

/** One offline change and its audit event, through the same unit of work as the server's changes. */
async function inTransaction<T>(
  store: Store,
  work: (tx: Store['db'], now: Date) => Promise<{ value: T; audit: { action: string; subject: string; data: Record<string, unknown> } }>,
): Promise<T> {
  const actor = offlineActor();
  const { auditedChange } = await loadAuth();
  return auditedChange(store.db, async (tx, now, audit) => {
    const { value, audit: entry } = await work(tx, now);
    audit({ ...entry, actor });
    return value;
  });
}

const collect = (value: string, previous: string[]) => [...previous, value];
// Loaded on use: the `lapse` client commands start faster without the database and auth code.
const loadAuth = () => import('../../auth/index.js');

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('offline administration on the database (users, tokens)');
  const user = admin.command('user').description('local users and service identities');
  addLocationOptions(user.command('create <name>'))
    .description('create a local user (or --service identity)')
    .option('-g, --group <group>', 'a group (repeatable)', collect, [])
    .option('--service', 'a service identity rather than a person')
    .option('--password-stdin', 'read a password from standard input (12 to 1024 characters) so the user can sign in')
    .action(
      action(
        async (name: string, options: { config?: string; dataDir?: string; group: string[]; service?: boolean; passwordStdin?: boolean }, command: Command) => {
          const globals = command.optsWithGlobals<GlobalOptions>();
          if (options.passwordStdin && options.service)
            throw new LapseError('validation_failed', 'service identities sign in with API tokens, not passwords', { where: '--password-stdin' });
          const { checkPasswordPolicy, createUser, setPassword } = await loadAuth();
          const password = options.passwordStdin ? await readSecretFromStdin('password') : undefined;
          if (password !== undefined) checkPasswordPolicy(password, '--password-stdin');
          const store = await openStoreAt(resolveLocation(options));
          try {
            const created = await inTransaction(store, async (tx, now) => {
              const value = await createUser(tx, { name, groups: options.group, kind: options.service ? 'service' : 'user' }, now);
              if (password !== undefined) await setPassword(tx, value.id, password);
              return {
                value,
                audit: {
                  action: 'user.created',
                  subject: value.id,
                  data: { name: value.name, kind: value.kind, groups: value.groups, canSignIn: password !== undefined },
                },
              }; // NB. audit keys may not mention passwords
            });
            emit(
              globals,
              { ...created, hasPassword: password !== undefined },
              () =>
                `created ${created.kind} ${created.name} (${created.id})${created.groups.length ? ` in ${created.groups.join(', ')}` : ''}${password !== undefined ? ', with a password' : ''}`,
            );
          } finally {
            await store.close();
          }
        },
      ),
    );

  addLocationOptions(user.command('set-password <name>'))
    .description("set or replace a local user's password (read from standard input); signs them out everywhere")
    .requiredOption('--password-stdin', 'read the password from standard input (12 to 1024 characters)')
    .action(
      action(async (name: string, options: { config?: string; dataDir?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { checkPasswordPolicy, findAccount, setPassword } = await loadAuth();
        const password = await readSecretFromStdin('password');
        checkPasswordPolicy(password, '--password-stdin');
        const store = await openStoreAt(resolveLocation(options));
        try {
          const changed = await inTransaction(store, async (tx) => {
            const owner = await findAccount(tx, name);
            if (!owner) throw new LapseError('not_found', `there is no user ${name}`, { where: name, hint: 'Create it with `lapse admin user create`.' });
            if (owner.source !== 'local' || owner.kind !== 'user') {
              throw new LapseError(
                'validation_failed',
                `${name} is ${owner.source === 'oidc' ? 'an OIDC user (their password lives at the identity provider)' : 'a service identity (it uses API tokens)'}`,
                { where: name },
              );
            }
            await setPassword(tx, owner.id, password);
            return { value: owner, audit: { action: 'user.password_set', subject: owner.id, data: { name: owner.name } } };
          });
          emit(globals, { id: changed.id, name: changed.name, passwordSet: true }, () => `password set for ${changed.name}; their sessions were ended`);
        } finally {
          await store.close();
        }
      }),
    );

  addLocationOptions(user.command('set-email <name> [address]'))
    .description("set where a user's email notifications go (OIDC sign-in fills it from the email claim); --clear removes it")
    .option('--clear', 'remove the address: the user gets no email notifications')
    .action(
      action(async (name: string, address: string | undefined, options: { config?: string; dataDir?: string; clear?: boolean }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        if ((address === undefined) === !options.clear) {
          throw new LapseError('validation_failed', 'give an address, or --clear to remove it (not both)', {
            where: '[address]',
            hint: 'e.g. lapse admin user set-email dana dana@example.com',
          });
        }
        const { setEmailAddress } = await loadAuth();
        const store = await openStoreAt(resolveLocation(options));
        try {
          const email = await inTransaction(store, async (tx) => {
            const value = await setEmailAddress(tx, name, address ?? null);
            return { value, audit: { action: 'user.email_set', subject: name, data: { name, email: value } } };
          });
          emit(globals, { name, email }, () => (email ? `email notifications for ${name} go to ${email}` : `${name} has no email address now`));
        } finally {
          await store.close();
        }
      }),
    );

  addLocationOptions(user.command('disable <name>'))
    .description('deprovision a person: end their sessions and API tokens, cancel their pending requests, revoke their grants')
    .option('--reason <text>', 'why (goes to the audit log; 1 to 500 characters)', 'disabled by an admin')
    .action(
      action(async (name: string, options: { config?: string; dataDir?: string; reason: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { openRuntime } = await import('../runtime.js');
        const runtime = await openRuntime(resolveLocation(options));
        try {
          const done = await runtime.engine.disableUser({ name, actor: offlineActor(), reason: options.reason });
          emit(globals, done, () =>
            [
              `${done.user.name} ${done.changed ? 'is disabled' : 'was disabled already'}: ${done.sessionsEnded} session(s) ended, ${done.apiAccessRevoked} API token(s) revoked,`,
              `${done.requestsCancelled.length} pending request(s) cancelled, ${done.grantsRevoked.length} grant(s) being revoked (the server's scheduler removes the access).`,
            ].join('\n'),
          );
        } finally {
          await runtime.close();
        }
      }),
    );

  addLocationOptions(user.command('enable <name>'))
    .description('let a disabled person sign in again (nothing they held comes back)')
    .option('--reason <text>', 'why (goes to the audit log)', 'enabled by an admin')
    .action(
      action(async (name: string, options: { config?: string; dataDir?: string; reason: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { openRuntime } = await import('../runtime.js');
        const runtime = await openRuntime(resolveLocation(options));
        try {
          const done = await runtime.engine.enableUser({ name, actor: offlineActor(), reason: options.reason });
          emit(globals, done, () => `${done.user.name} ${done.changed ? 'may sign in again' : 'was not disabled'}`);
        } finally {
          await runtime.close();
        }
      }),
    );

  const token = admin.command('token').description('API tokens for the CLI and automation');
  addLocationOptions(token.command('create'))
    .description('create an API token; it is printed once and stored only as a hash')
    .requiredOption('-u, --user <name>', 'the user the token acts as')
    .requiredOption('-s, --scope <scope>', 'read, request, approve or admin (repeatable)', collect, [])
    .option('--expires <duration>', 'lifetime, e.g. 30d (default 90d; "never" for none)', '90d')
    .option('--name <name>', 'what the token is for', 'cli')
    .action(
      action(async (options: { config?: string; dataDir?: string; user: string; scope: string[]; expires: string; name: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const expiresInMs = options.expires === 'never' ? null : parseDuration(options.expires, '--expires');
        const { findUserByName, issueApiToken } = await loadAuth();
        const store = await openStoreAt(resolveLocation(options));
        try {
          const issued = await inTransaction(store, async (tx, now) => {
            const owner = await findUserByName(tx, options.user);
            if (!owner)
              throw new LapseError('not_found', `there is no user ${options.user}`, { where: '--user', hint: 'Create it with `lapse admin user create`.' });
            const value = await issueApiToken(tx, { userId: owner.id, name: options.name, scopes: options.scope, expiresInMs, issuedBy: offlineActor() }, now);
            return {
              value,
              audit: {
                action: 'token.created',
                subject: value.id,
                data: { user: owner.name, scopes: options.scope, expiresAt: value.expiresAt?.toISOString() ?? null, issuedBy: offlineActor() },
              },
            };
          });
          emit(globals, { id: issued.id, token: issued.token, expiresAt: issued.expiresAt?.toISOString() ?? null }, () =>
            [
              `${issued.token}`,
              '',
              `token ${issued.id} for ${options.user}, scopes ${options.scope.join(', ')}, ${issued.expiresAt ? `expires ${issued.expiresAt.toISOString()}` : 'never expires'}.`,
              'This is the only time it is shown; store it now.',
            ].join('\n'),
          );
        } finally {
          await store.close();
        }
      }),
    );

  const scim = admin.command('scim-token').description('bearer tokens for an identity provider to push people and groups over SCIM (docs/identity.md)');
  addLocationOptions(scim.command('create'))
    .description('create a SCIM token (it works on /scim/v2 only); printed once, stored only as a hash')
    .requiredOption('--name <name>', 'which identity provider it is for, e.g. okta (the audit actor is scim:<name>)')
    .option('--expires <duration>', 'lifetime, e.g. 365d (default 365d; "never" for none)', '365d')
    .action(
      action(async (options: { config?: string; dataDir?: string; name: string; expires: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const expiresInMs = options.expires === 'never' ? null : parseDuration(options.expires, '--expires');
        const { issueScimToken } = await loadAuth();
        const store = await openStoreAt(resolveLocation(options));
        try {
          const issued = await inTransaction(store, async (tx, now) => {
            const value = await issueScimToken(tx, { name: options.name, createdBy: offlineActor(), expiresInMs }, now);
            return {
              value,
              audit: { action: 'scim_token.created', subject: value.id, data: { name: options.name, expiresAt: value.expiresAt?.toISOString() ?? null } },
            };
          });
          emit(globals, { id: issued.id, token: issued.token, expiresAt: issued.expiresAt?.toISOString() ?? null }, () =>
            [
              issued.token,
              '',
              `SCIM token ${issued.id} (${options.name}), ${issued.expiresAt ? `expires ${issued.expiresAt.toISOString()}` : 'never expires'}; the SCIM base URL is <your Lapse URL>/scim/v2.`,
              'This is the only time it is shown; paste it into the identity provider now.',
            ].join('\n'),
          );
        } finally {
          await store.close();
        }
      }),
    );
  addLocationOptions(scim.command('revoke <id>'))
    .description('revoke a SCIM token at once')
    .action(
      action(async (id: string, options: { config?: string; dataDir?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { revokeScimToken } = await loadAuth();
        const store = await openStoreAt(resolveLocation(options));
        try {
          const revoked = await inTransaction(store, async (tx) => ({
            value: await revokeScimToken(tx, id),
            audit: { action: 'scim_token.revoked', subject: id, data: {} },
          }));
          if (!revoked) throw new LapseError('not_found', `there is no live SCIM token ${id}`, { where: id });
          emit(globals, { id, revoked }, () => `SCIM token ${id} revoked`);
        } finally {
          await store.close();
        }
      }),
    );

  addLocationOptions(admin.command('ldap-sync'))
    .description('sync people and groups from LDAP / Active Directory now (identity.ldap; the server also runs it every interval)')
    .action(
      action(async (options: { config?: string; dataDir?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { openRuntime } = await import('../runtime.js');
        const runtime = await openRuntime(resolveLocation(options));
        try {
          const report = await runtime.engine.syncLdap({ actor: offlineActor() });
          emit(globals, report, () =>
            [
              `LDAP: ${report.people} people, ${report.created} new, ${report.updated} changed, ${report.deprovisioned} deprovisioned; ${report.groups} groups, ${report.groupsDeleted} removed.`,
              ...report.skipped.map((s) => `skipped ${s.dn}: ${s.reason}`),
            ].join('\n'),
          );
        } finally {
          await runtime.close();
        }
      }),
    );
}
