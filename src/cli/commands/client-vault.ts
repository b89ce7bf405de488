import type { Command } from 'commander';
import { z } from 'zod';
import { EXIT, LapseError } from '../../domain/errors.js';
import { action } from '../output.js';
import { readSecretFromStdin } from '../stdin.js';
import { MAX_REASON_LENGTH } from '../../domain/input-schemas.js';
import { addClientOptions, addStepUpOption, clientFor, idOf, text, type ClientFlags } from './client-flags.js';
import { answer, askBody, type AskFlags } from './client-request.js';
import { describeGrant, grantAnswer, requestAnswer } from './client-resources.js';
import { askHidden } from './client-prompt.js';
import { show } from './client-show.js';

/** The vault (docs/vault.md): what it holds, handing it an account, check-out and check-in, re-keying. */

const accountSchema = z.looseObject({
  target: z.string().max(128),
  account: z.string().max(256),
  status: z.string().max(32),
  generation: z.number().int(),
  holderGrantId: z.string().max(64).nullable(),
  holderPrincipalId: z.string().max(256).nullable().optional(),
  nextRotationAt: z.string().max(64).nullable().optional(),
  rotatedAt: z.string().max(64).nullable(),
  rotationFailures: z.number().int(),
  rotationOverdueSince: z.string().max(64).nullable(),
  lastError: z.string().max(4000).nullable(),
});
type VaultAccount = z.infer<typeof accountSchema>;

function describe(account: VaultAccount): string {
  const holder = account.holderPrincipalId ? `${account.holderPrincipalId} (${account.holderGrantId})` : account.holderGrantId;
  const state = account.status === 'checked_out' ? `checked out by ${holder}` : account.status;
  const next = account.nextRotationAt ? `  next rotation ${account.nextRotationAt}` : '';
  const overdue = account.rotationOverdueSince
    ? `  ROTATION OVERDUE since ${account.rotationOverdueSince} (${account.rotationFailures} failures: ${account.lastError})`
    : '';
  return `${account.target}/${account.account}  ${state}  last rotated ${account.rotatedAt ?? 'never'}${next}${overdue}`;
}

const rekeySchema = z.looseObject({
  keyId: z.string().max(64),
  rewrapped: z.record(z.string().max(64), z.number().int()),
  changedMeanwhile: z.number().int(),
  unreadable: z.array(z.looseObject({ kind: z.string().max(64), id: z.string().max(128), error: z.string().max(4000) })).max(100),
  remaining: z.number().int(),
});

function describeRekey(report: z.infer<typeof rekeySchema>): string {
  const counts = Object.entries(report.rewrapped)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  const lines = [`re-wrapped under key ${report.keyId}: ${counts}`];
  if (report.changedMeanwhile > 0) lines.push(`${report.changedMeanwhile} changed meanwhile (a rotation or fetch sealed them anew)`);
  for (const u of report.unreadable) lines.push(`UNREADABLE ${u.kind} ${u.id}: ${u.error}`);
  lines.push(
    report.remaining === 0
      ? 'nothing is left under an older key: remove it from secrets.previousEncryptionKeys'
      : `${report.remaining} value(s) still under an older key: keep it configured and run \`lapse vault rekey\` again`,
  );
  return lines.join('\n');
}

/** The catalogue as `vault checkout` reads it: which entitlement lends which account. */
const vaultCatalogue = z.looseObject({
  items: z
    .array(z.looseObject({ target: z.string().max(128), entitlement: z.string().max(128), checkoutAccount: z.string().max(256).nullable().optional() }))
    .max(10_000),
});

interface CheckoutFlags extends ClientFlags {
  duration?: string;
  reason?: string;
  ticket?: string;
  timeout: string;
}

/** `<target>/<account>`: the target is a name without "/"; the account is the rest (it may hold "@" or "/"). */
function accountRef(ref: string): { target: string; account: string } {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1 || ref.length > 400) {
    throw new LapseError('validation_failed', `"${ref.slice(0, 80)}" is not <target>/<account>`, {
      where: '<target/account>',
      hint: 'e.g. `lapse vault checkout prod-db/postgres`; `lapse vault ls` (admins) or `lapse catalogue` show the accounts.',
    });
  }
  return { target: ref.slice(0, slash), account: ref.slice(slash + 1) };
}

interface OnboardFlags extends ClientFlags {
  passwordStdin?: boolean;
}

export function registerVaultCommands(program: Command): void {
  const vault = program.command('vault').description('the vault: shared privileged accounts Lapse lends and rotates (docs/vault.md)');

  addClientOptions(vault.command('ls'))
    .description("list the vault's accounts and their states (admins, auditors)")
    .action(
      action(async (_options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const answer = await clientFor(flags).get('/api/v1/vault/accounts', z.looseObject({ accounts: z.array(accountSchema).max(10_000) }));
        show(flags, answer, () => (answer.accounts.length === 0 ? 'the vault holds no accounts yet' : answer.accounts.map(describe).join('\n')));
      }),
    );

  addStepUpOption(addClientOptions(vault.command('checkout <target/account>')))
    .description(
      "check out a vault account: a request through the usual policy, approval and MFA, followed until active, then the account's password shown once",
    )
    .option('--duration <duration>', "how long, e.g. 30m, 1h (default: the policy's)")
    .option('--reason <text>', `why you need it (shown to approvers and audited; at most ${MAX_REASON_LENGTH} characters)`)
    .option('--ticket <ref>', 'change or incident ticket, if the policy asks for one')
    .option('--timeout <duration>', 'give up waiting for approval after this long (at most 24h); the request stays', '15m')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<CheckoutFlags>();
        const { target, account } = accountRef(ref);
        const client = clientFor(flags);
        const { items } = await client.get('/api/v1/catalogue', vaultCatalogue);
        const item = items.find((i) => i.target === target && i.checkoutAccount === account);
        if (!item) {
          throw new LapseError('not_found', `there is no vault account ${target}/${account} you may check out`, {
            where: '<target/account>',
            hint: '`lapse catalogue` lists what you may request; a vault account is an entitlement with checkout.account (docs/vault.md).',
          });
        }
        const ask: AskFlags = { ...flags, param: [], wait: true, ...(flags.duration !== undefined ? { for: flags.duration } : {}) };
        const { body, waitMs } = askBody(`${item.target}/${item.entitlement}`, ask, false);
        const { request } = await client.post('/api/v1/requests', requestAnswer, { body });
        return answer(client, ask, request, waitMs);
      }),
    );

  addStepUpOption(addClientOptions(vault.command('checkin <grant-id>')))
    .description("give a checked-out account back now: its sessions end and Lapse replaces its password (the grant's release)")
    .option('--reason <text>', 'why, for the audit log')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<CheckoutFlags>();
        const id = idOf('grant', ref, '<grant-id>');
        const reason = text(flags.reason, '--reason', MAX_REASON_LENGTH, false);
        const { grant } = await clientFor(flags).post('/api/v1/grants/{id}/release', grantAnswer, { path: { id }, body: reason ? { reason } : {} });
        show(flags, { grant }, () => `checked in: ${describeGrant(grant)}\nthe password you saw is being replaced; it stops working within moments`);
      }),
    );

  addClientOptions(vault.command('rekey'))
    .description('after changing the key-encryption key: re-wrap every sealed value under it, while Lapse keeps serving; safe to rerun (admin)')
    .action(
      action(async (_options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const answer = await clientFor(flags).post('/api/v1/vault/rekey', z.looseObject({ rekey: rekeySchema }), {});
        show(flags, answer, () => describeRekey(answer.rekey));
        return answer.rekey.remaining === 0 ? EXIT.ok : EXIT.failed;
      }),
    );

  addStepUpOption(addClientOptions(vault.command('onboard <target> <account>')))
    .description("hand Lapse an account's current password once; Lapse checks it, then replaces it so nobody knows it (admin, fresh MFA)")
    .option('--password-stdin', 'read the password from standard input (otherwise it is asked for on the terminal, without echo)')
    .action(
      action(async (target: string, account: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<OnboardFlags>();
        // NB. Never an argument: argv shows in `ps` and shell history.
        const password = flags.passwordStdin ? await readSecretFromStdin('password', 1024) : await askHidden(`Current password of ${account} at ${target}: `);
        if (!password) {
          throw new LapseError('validation_failed', 'no password given', {
            where: '--password-stdin',
            hint: `Pipe it in: \`lapse vault onboard ${target} ${account} --password-stdin < file\`, or run it on a terminal to be asked.`,
          });
        }
        const answer = await clientFor(flags).post('/api/v1/vault/accounts/{target}/{account}/onboard', z.looseObject({ account: accountSchema }), {
          path: { target, account },
          body: { password },
        });
        show(
          flags,
          answer,
          () => `onboarded ${answer.account.target}/${answer.account.account}: ${answer.account.status}; the password you gave is being replaced`,
        );
      }),
    );
}
