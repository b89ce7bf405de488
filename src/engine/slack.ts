import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { SlackChannelConfig } from '../config/types.js';
import { isLapseError, LapseError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { APPROVE_ACTION, checkSlackSignature, DENY_ACTION, SLACK_SIGNATURE_WINDOW_MS, SlackChannel, type SlackDirectory } from '../notify/index.js';
import {
  getUserByName,
  linkSlackIdentity,
  principalOfSlackUser,
  putSlackLinkCode,
  recordSlackInteraction,
  rememberSlackMessage,
  slackMessageOfDelivery,
  slackMessagesOfRequest,
  slackUserIdOf,
  takeSlackLinkCode,
  unlinkSlackIdentity,
  type Store,
} from '../store/index.js';
import { auditRefusal, transact, type EngineContext } from './context.js';
import { reviewRequest } from './requests.js';
import { errorMessage } from './target-calls.js';

/**
 * Slack as a way in (docs/notifications.md#slack): people link their Slack user id (a one-time
 * code they send to the app, or an admin maps it), and approvers decide from a message's buttons.
 * Everything Slack sends is checked first (signature over the raw body, 5-minute window, each
 * signature accepted once, on any replica); a decision then goes through the same review
 * use-case as the API (approver check, no self-approval, MFA, audit). Every refusal is audited.
 */

/** The channel's window onto the database (notify does not reach the store itself). */
export function slackDirectory(store: Store): SlackDirectory {
  return {
    slackUserOf: (user) => slackUserIdOf(store.db, user),
    messageOfDelivery: (id) => slackMessageOfDelivery(store.db, id),
    messagesOfRequest: (channel, requestId) => slackMessagesOfRequest(store.db, channel, requestId),
    remember: (ref) => rememberSlackMessage(store.db, ref, new Date()),
  };
}

/** A request as Slack sent it: the raw body (the signature covers it byte for byte) and its headers. */
export interface SignedSlackRequest {
  readonly rawBody: string;
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
  readonly route: string;
}

export const SLACK_LINK_CODE_TTL_MS = 10 * 60_000;
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTVWXYZ23456789';

/** A Slack user id (U… or W… for Enterprise Grid). */
export const slackUserId = z
  .string()
  .max(32)
  .regex(/^[UW][A-Z0-9]{2,30}$/, 'write a Slack user id (U… from the person\'s Slack profile, "Copy member ID"), not a name or an email');

const bounded = (max: number) => z.string().max(max);
const blockActions = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: slackUserId }),
  container: z.object({ channel_id: bounded(32).optional(), message_ts: bounded(32).optional() }).optional(),
  channel: z.object({ id: bounded(32) }).optional(),
  actions: z
    .array(z.object({ action_id: bounded(255), value: bounded(2000).optional() }))
    .min(1)
    .max(5),
});

const hashCode = (code: string) =>
  createHash('sha256')
    .update(code.toUpperCase().replace(/[^A-Z0-9]/g, ''))
    .digest('hex');

function newLinkCode(): string {
  const bytes = randomBytes(8);
  const chars = [...bytes].map((b) => CODE_ALPHABET[b % CODE_ALPHABET.length]).join('');
  return `${chars.slice(0, 4)}-${chars.slice(4)}`;
}

export function slackUseCases(context: EngineContext) {
  const inFlight = new Set<Promise<void>>();

  const slackChannels = (): SlackChannelConfig[] =>
    [...context.config().notifications.channels.values()].filter((c): c is SlackChannelConfig => c.type === 'slack');

  /** The signature, the window, then once-only; refusals audited. Answers the channel whose app signed it. */
  async function verify(request: SignedSlackRequest, claimedUser: string | undefined): Promise<SlackChannelConfig> {
    const channels = slackChannels();
    if (channels.length === 0) {
      throw new LapseError('not_found', 'Slack is not configured on this Lapse', {
        where: request.route,
        hint: 'Add a channel of type slack under notifications.channels in lapse.yaml (docs/notifications.md#slack).',
      });
    }
    const check = checkSlackSignature(
      channels.map((c) => c.signingSecret),
      request,
      request.rawBody,
      Date.now(),
    );
    if (check.result !== 'valid') {
      const why = { missing: 'no signature', malformed: 'a malformed signature', expired: 'a timestamp outside 5 minutes', mismatch: 'a wrong signature' }[
        check.result
      ];
      await auditRefusal(context, {
        action: 'slack.request_refused',
        actor: 'slack',
        data: { route: request.route, reason: check.result, claimedSlackUser: claimedUser ?? null },
      });
      throw new LapseError('unauthenticated', `refused a Slack request with ${why}`, {
        where: 'X-Slack-Signature',
        hint: 'Slack signs with the app\'s signing secret (notifications.channels.<name>.signingSecret); check it matches the app\'s "Signing Secret" and that the server clock is right.',
      });
    }
    const now = new Date();
    const first = await transact(context, (unit) =>
      recordSlackInteraction(unit.tx, request.signature!, unit.now, new Date(unit.now.getTime() - 2 * SLACK_SIGNATURE_WINDOW_MS)),
    );
    if (!first) {
      await auditRefusal(context, {
        action: 'slack.request_refused',
        actor: 'slack',
        data: { route: request.route, reason: 'replayed', claimedSlackUser: claimedUser ?? null, at: now.toISOString() },
      });
      throw new LapseError('unauthenticated', 'refused a Slack request already received (a replay)', {
        where: 'X-Slack-Signature',
        hint: 'Each signed Slack request is accepted once; click the button again for a new one.',
      });
    }
    return channels[check.secret]!;
  }

  /** The Lapse person behind a Slack user, as a principal with their current groups; undefined when unlinked or disabled. */
  async function principalOf(slackUser: string): Promise<Principal | undefined> {
    const name = await principalOfSlackUser(context.store.db, slackUser);
    const user = name === undefined ? undefined : await getUserByName(context.store.db, name);
    if (!user || user.disabled_at !== null || user.kind !== 'user') return undefined;
    return { id: user.name, kind: 'user', groups: user.groups };
  }

  /** Approve or Deny from a message, after the acknowledgement. Refusals are audited and told to the clicker. */
  async function decide(
    settings: SlackChannelConfig,
    payload: z.output<typeof blockActions>,
    action: { decision: 'approve' | 'deny'; requestId: string },
  ): Promise<void> {
    const channel = context.channel(settings.name);
    const slack = channel instanceof SlackChannel ? channel : undefined;
    const conversation = payload.container?.channel_id ?? payload.channel?.id;
    const ts = payload.container?.message_ts;
    const tell = async (text: string) => {
      if (slack && conversation) await slack.tell(conversation, payload.user.id, text).catch(() => undefined);
    };
    const reviewer = await principalOf(payload.user.id);
    if (!reviewer) {
      await auditRefusal(context, {
        action: 'slack.interaction_refused',
        actor: 'slack',
        subject: action.requestId,
        data: { reason: 'unlinked', slackUser: payload.user.id, decision: action.decision },
      });
      await tell(
        'Your Slack account is not linked to a Lapse user, so Lapse cannot take your decision. Get a linking code in the Lapse portal and send `/lapse link CODE`.',
      );
      return;
    }
    try {
      const outcome = await reviewRequest(context, {
        requestId: action.requestId,
        reviewer,
        decision: action.decision,
        comment: 'from Slack',
        client: { userAgent: 'Slack interaction' },
      });
      const verb = action.decision === 'approve' ? 'Approved' : 'Denied';
      const text = `${verb} by ${reviewer.id} in Slack: ${outcome.request.principal.id}'s request for ${outcome.request.target}/${outcome.request.entitlement}${outcome.effect === 'advanced' ? ' (this stage passed; the next stage is asked)' : ''}.`;
      if (slack && conversation && ts) await slack.update(conversation, ts, text, context.config().auth.publicUrl, action.requestId);
    } catch (error) {
      if (!isLapseError(error)) throw error;
      await auditRefusal(context, {
        action: 'slack.interaction_refused',
        actor: reviewer.id,
        subject: action.requestId,
        data: { reason: error.code, message: error.message, slackUser: payload.user.id, decision: action.decision },
      });
      await tell(`Lapse did not take your decision: ${error.message}.`);
    }
  }

  return {
    /** A one-time code a person sends to the Slack app (`/lapse link CODE`) to link their Slack user; 10 minutes. */
    async issueLinkCode(by: Principal): Promise<{ code: string; expiresAt: Date }> {
      if (by.kind !== 'user' || (by.via !== undefined && by.via.issuedBy !== by.id)) {
        throw new LapseError('forbidden', 'only a person signed in as themselves links a Slack account', {
          where: by.id,
          hint: 'Sign in to the portal (not with an API token) and ask for the code there.',
        });
      }
      const code = newLinkCode();
      const expiresAt = await transact(context, async (unit) => {
        const expiresAt = new Date(unit.now.getTime() + SLACK_LINK_CODE_TTL_MS);
        await putSlackLinkCode(unit.tx, { hash: hashCode(code), principalId: by.id, expiresAt }, unit.now);
        await unit.audit({ action: 'slack.link_code_issued', actor: by.id, subject: by.id, data: { expiresAt: expiresAt.toISOString() } });
        return expiresAt;
      });
      return { code, expiresAt };
    },

    /** The Slack user a person is linked to, if any. */
    async linkOf(principalId: string): Promise<{ slackUserId: string | null }> {
      return { slackUserId: (await slackUserIdOf(context.store.db, principalId)) ?? null };
    },

    /** An admin links (or, with null, unlinks) a person's Slack user id. Audited. */
    async mapUser(by: Principal, user: string, raw: string | null): Promise<{ user: string; slackUserId: string | null }> {
      const parsed = raw === null ? null : slackUserId.safeParse(raw);
      if (parsed && !parsed.success) {
        throw new LapseError('validation_failed', `invalid Slack user id: ${parsed.error.issues[0]?.message}`, {
          where: 'slackUserId',
          hint: 'Nothing was changed.',
        });
      }
      const target = await getUserByName(context.store.db, user);
      if (!target || target.kind !== 'user') {
        throw new LapseError('not_found', `there is no user ${user}`, { where: user, hint: 'Slack accounts link to people (users), not service identities.' });
      }
      const id = parsed ? parsed.data : null;
      await transact(context, async (unit) => {
        if (id === null) {
          await unlinkSlackIdentity(unit.tx, user);
          await unit.audit({ action: 'slack.unlinked', actor: by.id, subject: user, data: { by: 'admin' } });
          return;
        }
        const result = await linkSlackIdentity(unit.tx, { principalId: user, slackUserId: id, linkedBy: by.id, linkedAt: unit.now });
        if (result.conflict !== undefined) {
          throw new LapseError('conflict', `Slack user ${id} is already linked to ${result.conflict}`, {
            where: 'slackUserId',
            hint: `Unlink it from ${result.conflict} first (lapse slack link ${result.conflict} --unlink); nothing was changed.`,
          });
        }
        await unit.audit({ action: 'slack.linked', actor: by.id, subject: user, data: { slackUserId: id, by: 'admin' } });
      });
      return { user, slackUserId: id };
    },

    /**
     * A slash command (`/lapse link CODE`): verified like an interaction; answers the text Slack
     * shows the person (only them). A wrong or expired code is audited and links nobody.
     */
    async command(request: SignedSlackRequest): Promise<{ text: string }> {
      const form = new URLSearchParams(request.rawBody);
      const claimed = form.get('user_id') ?? undefined;
      await verify(request, claimed);
      const user = slackUserId.safeParse(claimed);
      const words = (form.get('text') ?? '').trim().slice(0, 200).split(/\s+/);
      if (!user.success) return { text: 'Slack sent no user id with this command.' };
      if (words[0] !== 'link' || !words[1]) {
        return { text: 'Usage: `/lapse link CODE`, with the code the Lapse portal gives you (Profile → Link Slack).' };
      }
      const outcome = await transact(context, async (unit) => {
        const taken = await takeSlackLinkCode(unit.tx, hashCode(words[1]!), unit.now);
        if (!taken || taken.expired) return { refused: taken ? 'expired code' : 'unknown code' } as const;
        const result = await linkSlackIdentity(unit.tx, {
          principalId: taken.principalId,
          slackUserId: user.data,
          linkedBy: taken.principalId,
          linkedAt: unit.now,
        });
        if (result.conflict !== undefined) return { refused: 'Slack user already linked to someone else' } as const;
        await unit.audit({ action: 'slack.linked', actor: taken.principalId, subject: taken.principalId, data: { slackUserId: user.data, by: 'code' } });
        return { linked: taken.principalId } as const;
      });
      if ('refused' in outcome) {
        await auditRefusal(context, { action: 'slack.link_refused', actor: 'slack', data: { slackUser: user.data, reason: outcome.refused } });
        return { text: `Lapse did not link your account: ${outcome.refused}. Codes work once, for 10 minutes; get a new one in the portal.` };
      }
      return { text: `Linked: Lapse now knows you as ${outcome.linked}.` };
    },

    /**
     * A button click. Verified and recorded before the answer (so a forgery or replay is refused
     * with 401); the decision itself runs after the acknowledgement, within Slack's 3 seconds.
     */
    async interaction(request: SignedSlackRequest): Promise<void> {
      const raw = new URLSearchParams(request.rawBody).get('payload') ?? '';
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        json = undefined;
      }
      const claimed = (json as { user?: { id?: unknown } } | undefined)?.user?.id;
      const settings = await verify(request, typeof claimed === 'string' ? claimed.slice(0, 32) : undefined);
      const parsed = blockActions.safeParse(json);
      if (!parsed.success) {
        // Signed by Slack but not a button click Lapse sent (a link button, a view): nothing to do.
        return;
      }
      const payload = parsed.data;
      const clicked = payload.actions.find((a) => a.action_id === APPROVE_ACTION || a.action_id === DENY_ACTION);
      if (!clicked?.value || !/^[a-z]{2,6}_[0-9A-Za-z]{10,40}$/.test(clicked.value)) return;
      const action = { decision: clicked.action_id === APPROVE_ACTION ? ('approve' as const) : ('deny' as const), requestId: clicked.value };
      const work = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => decide(settings, payload, action))
        .catch((error: unknown) => context.logger.error({ error: errorMessage(error), request: action.requestId }, 'Slack decision failed'))
        .finally(() => inFlight.delete(work));
      inFlight.add(work);
    },

    /** Resolves when the decisions taken after acknowledging Slack are done (tests, shutdown). */
    async idle(): Promise<void> {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}

export type SlackUseCases = ReturnType<typeof slackUseCases>;
