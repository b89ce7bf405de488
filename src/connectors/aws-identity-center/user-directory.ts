import { DescribeUserCommand, GetUserIdCommand, ListUsersCommand, type AlternateIdentifier, type DescribeUserResponse } from '@aws-sdk/client-identitystore';
import { LapseError } from '../../domain/errors.js';
import type { IdentityCenterApi } from './identity-center-api.js';
import { USER_ID, type IdentityCenterTarget } from './settings.js';

/**
 * Lapse principals ↔ Identity Store users. A principal id is matched against one attribute
 * (`userAttribute`): the user name (default), an email address (`emails.value`, the unique
 * attributes GetUserId accepts besides `userName`) or an external id from the target's issuer (as
 * SCIM provisioning from the IdP sets it). Found user ids are remembered for `userCacheMs` (a
 * user's id never changes; only a deleted and re-created user gets a new one, which the short
 * cache bounds); misses are not remembered.
 */

const MAX_CACHED = 10_000;
const MAX_PRINCIPAL = 256;

export class UserDirectory {
  private readonly cache = new Map<string, { userId: string; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The Identity Store user id of the principal; throws when there is no such user. */
  async userIdOf(api: IdentityCenterApi, principalId: string): Promise<string> {
    const found = await this.lookup(api, principalId);
    if (found) return found;
    const { settings, target } = api;
    throw new LapseError(
      'connector_failed',
      `aws-identity-center target ${target.name}: no Identity Store user has ${describeAttribute(settings)} "${principalId.slice(0, 100)}"`,
      {
        where: `targets.${target.name}.settings.userAttribute`,
        hint: `create or sync the user in IAM Identity Center, or match principals on another attribute (userAttribute: userName, email or externalId)`,
      },
    );
  }

  /** The user id, or null when the Identity Store has no such user. */
  async lookup(api: IdentityCenterApi, principalId: string): Promise<string | null> {
    const { settings } = api;
    // eslint-disable-next-line no-control-regex -- control characters never name a user; refuse them before AWS sees them.
    if (principalId.length === 0 || principalId.length > MAX_PRINCIPAL || /[\u0000-\u001f\u007f]/.test(principalId)) {
      throw new LapseError('validation_failed', `principal id "${principalId.slice(0, 40)}" cannot name an Identity Store user`, { where: 'principalId' });
    }
    const cacheKey = `${settings.identityStoreId}\u0000${settings.userAttribute}\u0000${settings.externalIdIssuer ?? ''}\u0000${principalId}`;
    const cached = this.cache.get(cacheKey);
    if (cached && cached.until > this.now()) return cached.userId;
    this.cache.delete(cacheKey);
    const answer = await api.call(
      'identitystore:GetUserId',
      (o) =>
        api.identityStore.send(
          new GetUserIdCommand({ IdentityStoreId: settings.identityStoreId, AlternateIdentifier: alternateIdentifier(settings, principalId) }),
          o,
        ),
      ['ResourceNotFoundException'],
    );
    const userId = answer?.UserId;
    if (!userId) return null;
    if (!USER_ID.test(userId))
      throw new LapseError('connector_failed', `aws-identity-center target ${api.target.name}: GetUserId answered an id that is not a user id`);
    if (settings.userCacheMs > 0) {
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(cacheKey, { userId, until: this.now() + settings.userCacheMs });
    }
    return userId;
  }

  /** The principal id of a user (its userAttribute), or null when the user has none or is gone. */
  async principalOf(api: IdentityCenterApi, userId: string): Promise<string | null> {
    const user = await api.call(
      'identitystore:DescribeUser',
      (o) => api.identityStore.send(new DescribeUserCommand({ IdentityStoreId: api.settings.identityStoreId, UserId: userId }), o),
      ['ResourceNotFoundException'],
    );
    return user ? attributeOf(api.settings, user) : null;
  }

  /** One user of the store (for checkTarget), or null when it is empty. */
  async anyUser(api: IdentityCenterApi): Promise<string | null> {
    const page = await api.call('identitystore:ListUsers', (o) =>
      api.identityStore.send(new ListUsersCommand({ IdentityStoreId: api.settings.identityStoreId, MaxResults: 1 }), o),
    );
    return page.Users?.[0]?.UserId ?? null;
  }
}

function alternateIdentifier(settings: IdentityCenterTarget, principalId: string): AlternateIdentifier {
  if (settings.userAttribute === 'externalId') return { ExternalId: { Issuer: settings.externalIdIssuer!, Id: principalId } };
  return { UniqueAttribute: { AttributePath: settings.userAttribute === 'email' ? 'emails.value' : 'userName', AttributeValue: principalId } };
}

function attributeOf(settings: IdentityCenterTarget, user: Pick<DescribeUserResponse, 'UserName' | 'Emails' | 'ExternalIds'>): string | null {
  if (settings.userAttribute === 'userName') return user.UserName ?? null;
  if (settings.userAttribute === 'email') {
    const emails = user.Emails ?? [];
    return (emails.find((e) => e.Primary) ?? emails[0])?.Value ?? null;
  }
  return user.ExternalIds?.find((e) => e.Issuer === settings.externalIdIssuer)?.Id ?? null;
}

function describeAttribute(settings: IdentityCenterTarget): string {
  if (settings.userAttribute === 'externalId') return `the external id (issuer ${settings.externalIdIssuer})`;
  return settings.userAttribute === 'email' ? 'the email address' : 'the user name';
}
