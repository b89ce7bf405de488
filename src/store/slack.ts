import type { Executor } from './executor.js';

/**
 * What Slack needs remembered: who is who on Slack (linked, never matched by email), one-time
 * linking codes (hashed), where each message went (to update it in place), and the signatures of
 * interactions already accepted (to refuse a replay on any replica).
 */

export interface SlackIdentity {
  readonly principalId: string;
  readonly slackUserId: string;
  readonly linkedBy: string;
  readonly linkedAt: Date;
}

export async function slackUserIdOf(db: Executor, principalId: string): Promise<string | undefined> {
  const row = await db.selectFrom('slack_identities').select('slack_user_id').where('principal_id', '=', principalId).executeTakeFirst();
  return row?.slack_user_id;
}

export async function principalOfSlackUser(db: Executor, slackUserId: string): Promise<string | undefined> {
  const row = await db.selectFrom('slack_identities').select('principal_id').where('slack_user_id', '=', slackUserId).executeTakeFirst();
  return row?.principal_id;
}

/**
 * Links a person to a Slack user id (replacing their previous link). Returns the person the Slack
 * id is already linked to when that is someone else (and changes nothing).
 */
export async function linkSlackIdentity(tx: Executor, identity: SlackIdentity): Promise<{ conflict?: string }> {
  const holder = await principalOfSlackUser(tx, identity.slackUserId);
  if (holder !== undefined && holder !== identity.principalId) return { conflict: holder };
  const values = { slack_user_id: identity.slackUserId, linked_by: identity.linkedBy, linked_at: identity.linkedAt };
  await tx
    .insertInto('slack_identities')
    .values({ principal_id: identity.principalId, ...values })
    .onConflict((oc) => oc.column('principal_id').doUpdateSet(values))
    .execute();
  return {};
}

/** Removes a person's link; false when there was none. */
export async function unlinkSlackIdentity(tx: Executor, principalId: string): Promise<boolean> {
  const result = await tx.deleteFrom('slack_identities').where('principal_id', '=', principalId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Stores a person's new linking code (hashed), replacing any earlier one of theirs. */
export async function putSlackLinkCode(tx: Executor, code: { hash: string; principalId: string; expiresAt: Date }, now: Date): Promise<void> {
  await tx.deleteFrom('slack_link_codes').where('principal_id', '=', code.principalId).execute();
  await tx
    .insertInto('slack_link_codes')
    .values({ code_hash: code.hash, principal_id: code.principalId, expires_at: code.expiresAt, created_at: now })
    .execute();
}

/**
 * Uses up a linking code: deleted whatever the outcome (one try per code), and the person it was
 * issued to returned if it had not expired.
 */
export async function takeSlackLinkCode(tx: Executor, hash: string, now: Date): Promise<{ principalId: string; expired: boolean } | undefined> {
  const row = await tx.deleteFrom('slack_link_codes').where('code_hash', '=', hash).returning(['principal_id', 'expires_at']).executeTakeFirst();
  if (!row) return undefined;
  return { principalId: row.principal_id, expired: new Date(row.expires_at).getTime() <= now.getTime() };
}

export interface SlackMessageRef {
  readonly deliveryId: string;
  readonly requestId: string;
  readonly channel: string;
  readonly conversation: string;
  readonly ts: string;
  readonly event: string;
}

export async function rememberSlackMessage(db: Executor, ref: SlackMessageRef, now: Date): Promise<void> {
  await db
    .insertInto('slack_messages')
    .values({
      delivery_id: ref.deliveryId,
      request_id: ref.requestId,
      channel: ref.channel,
      conversation: ref.conversation,
      ts: ref.ts,
      event: ref.event,
      created_at: now,
    })
    .onConflict((oc) => oc.column('delivery_id').doNothing())
    .execute();
}

export async function slackMessageOfDelivery(db: Executor, deliveryId: string): Promise<SlackMessageRef | undefined> {
  const row = await db.selectFrom('slack_messages').selectAll().where('delivery_id', '=', deliveryId).executeTakeFirst();
  return row ? toRef(row) : undefined;
}

/** The messages a Slack channel posted about a request (at most 200, oldest first). */
export async function slackMessagesOfRequest(db: Executor, channel: string, requestId: string): Promise<SlackMessageRef[]> {
  const rows = await db
    .selectFrom('slack_messages')
    .selectAll()
    .where('request_id', '=', requestId)
    .where('channel', '=', channel)
    .orderBy('created_at')
    .limit(200)
    .execute();
  return rows.map(toRef);
}

function toRef(row: { delivery_id: string; request_id: string; channel: string; conversation: string; ts: string; event: string }): SlackMessageRef {
  return { deliveryId: row.delivery_id, requestId: row.request_id, channel: row.channel, conversation: row.conversation, ts: row.ts, event: row.event };
}

/**
 * Records an interaction's signature; false when it was already there (a replay). Signatures
 * older than `forgetBefore` are pruned first: the timestamp window refuses those anyway.
 */
export async function recordSlackInteraction(tx: Executor, signature: string, now: Date, forgetBefore: Date): Promise<boolean> {
  await tx.deleteFrom('slack_interactions_seen').where('seen_at', '<', forgetBefore).execute();
  const rows = await tx
    .insertInto('slack_interactions_seen')
    .values({ signature, seen_at: now })
    .onConflict((oc) => oc.column('signature').doNothing())
    .returning('signature')
    .execute();
  return rows.length > 0;
}
