import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuthService } from '../../auth/index.js';
import { resourceName } from '../../domain/input-schemas.js';
import { boundedText } from '../../domain/text.js';
import { ONBOARD_MFA_MAX_AGE_MS, type Engine, type VaultAccountView } from '../../engine/index.js';
import { callerOf } from '../authorization.js';
import { problemSchema } from '../problem.js';
import { requireFreshMfa } from '../step-up.js';

const accountSchema = z.object({
  id: z.string(),
  target: z.string(),
  account: z.string(),
  status: z.enum(['ready', 'checked_out', 'rotating']).describe('ready: only Lapse knows the password; checked_out: lent; rotating: being replaced'),
  generation: z.number().int().describe('How many passwords Lapse has held for the account'),
  holderGrantId: z.string().nullable().describe('The grant holding it while checked out'),
  holderPrincipalId: z.string().nullable().describe('Who holds it while checked out'),
  rotatedAt: z.string().nullable(),
  nextRotationAt: z.string().nullable().describe('When its next rotation is due (scheduled, under way or retried); null when none is planned'),
  rotationFailures: z.number().int(),
  rotationOverdueSince: z.string().nullable().describe('Set while rotations keep failing: a past holder may still know the live password'),
  lastError: z.string().nullable(),
  onboardedAt: z.string(),
  onboardedBy: z.string(),
});

const onboardParams = z.object({ target: resourceName, account: boundedText(256).min(1) }).strict();
const onboardBody = z
  .object({
    password: z.string().min(1).max(1024).describe("The account's current password; Lapse logs in with it, keeps it sealed and replaces it at once"),
  })
  .strict();

const sealedCounts = z.object({
  vault_current: z.number().int(),
  vault_pending: z.number().int(),
  grant_handout: z.number().int(),
  mfa_totp: z.number().int(),
});

const rekeySchema = z.object({
  keyId: z.string().describe('The key-encryption key everything is sealed under now (first 16 hex digits of its SHA-256)'),
  rewrapped: sealedCounts.describe('Values re-wrapped by this run, per kind'),
  changedMeanwhile: z.number().int().describe('Values replaced by a rotation or fetch while the run read them (theirs are already under the current key)'),
  unreadable: z
    .array(z.object({ kind: z.string(), id: z.string(), error: z.string() }))
    .describe('Values no configured key opens (first 20): left as they are'),
  remaining: z.number().int().describe('Values still not under the current key; 0 means the previous keys may be removed'),
});

function accountOut(account: VaultAccountView): z.infer<typeof accountSchema> {
  const iso = (date: Date | null) => date?.toISOString() ?? null;
  return {
    ...account,
    rotatedAt: iso(account.rotatedAt),
    nextRotationAt: iso(account.nextRotationAt),
    rotationOverdueSince: iso(account.rotationOverdueSince),
    onboardedAt: account.onboardedAt.toISOString(),
  };
}

/**
 * The vault (docs/vault.md): the accounts Lapse holds, and onboarding one. Check-out and check-in
 * are ordinary requests and grants (POST /api/v1/requests, release, credentials).
 */
export function vaultRoutes(engine: Engine, auth: AuthService): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/vault/accounts',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: {
              action: 'vault.list_refused',
              message: (who) => `${who.id} may not list the vault's accounts`,
              hint: 'Admins and auditors (roles in lapse.yaml) see the vault; everyone requests check-outs as usual.',
            },
          },
        },
        schema: {
          tags: ['vault'],
          summary: "The vault's accounts and their states (never a password)",
          security: [{ bearer: [] }],
          response: { 200: z.object({ accounts: z.array(accountSchema) }), 401: problemSchema, 403: problemSchema },
        },
      },
      async () => ({ accounts: (await engine.vaultAccounts()).map(accountOut) }),
    );

    app.post(
      '/api/v1/vault/rekey',
      {
        config: {
          auth: {
            scope: 'admin',
            role: 'admin',
            refused: {
              action: 'vault.rekey_refused',
              message: (who) => `${who.id} is not an admin`,
              hint: 'Only admins (roles.admins) re-wrap sealed values under a new key-encryption key.',
            },
          },
        },
        schema: {
          tags: ['vault'],
          summary: 'Re-wrap every sealed value (vault passwords, held credentials, TOTP seeds) under the current key-encryption key; safe to rerun (admin)',
          security: [{ bearer: [] }],
          response: { 200: z.object({ rekey: rekeySchema }), 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const report = await engine.rekeyVault(callerOf(request).principal.id);
        return { rekey: { ...report, rewrapped: { ...report.rewrapped }, unreadable: [...report.unreadable] } };
      },
    );

    app.post(
      '/api/v1/vault/accounts/:target/:account/onboard',
      {
        config: {
          auth: {
            scope: 'admin',
            role: 'admin',
            refused: {
              action: 'vault.onboard_refused',
              message: (who) => `${who.id} is not an admin`,
              hint: 'Only admins (roles.admins) onboard vault accounts.',
            },
          },
        },
        schema: {
          tags: ['vault'],
          summary: "Hand Lapse an account's current password once; it is verified, sealed and rotated at once (admin, fresh MFA)",
          security: [{ bearer: [] }],
          params: onboardParams,
          body: onboardBody,
          response: {
            202: z.object({ account: accountSchema }),
            400: problemSchema,
            401: problemSchema,
            403: problemSchema,
            404: problemSchema,
            409: problemSchema,
            502: problemSchema,
            504: problemSchema,
          },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const { target, account } = request.params;
        await requireFreshMfa(engine, auth, caller, await engine.read.now(), ONBOARD_MFA_MAX_AGE_MS, `onboarding ${target}/${account}`);
        const onboarded = await engine.onboardVaultAccount({
          target,
          account,
          password: request.body.password,
          by: caller.principal,
          client: { ...(caller.mfaAt ? { mfaAt: caller.mfaAt } : {}) },
        });
        return reply.code(202).send({ account: accountOut(onboarded) });
      },
    );
  };
}
