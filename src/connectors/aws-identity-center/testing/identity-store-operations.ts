import { AwsError } from '../../aws/testing/aws-fake.js';
import { PATTERNS, page, pageOf, requireString, type Input } from './constraints.js';
import type { FakeUser, IdentityCenterModel } from './identity-center-model.js';

/**
 * The Identity Store operations of the fake (GetUserId, DescribeUser, ListUsers) over the model's
 * users. GetUserId accepts what the API reference allows: an ExternalId (issuer and id) or a
 * UniqueAttribute whose path is `userName` or `emails.value` (compared case-insensitively, as the
 * paths are); anything else is a ValidationException; no match is a ResourceNotFoundException.
 */
export function identityStoreOperations(model: IdentityCenterModel): Record<string, (input: Input) => unknown> {
  const store = (input: Input) => {
    if (requireString(input, 'IdentityStoreId', PATTERNS.IdentityStoreId, 36) !== model.identityStoreId)
      throw new AwsError('ResourceNotFoundException', `Identity store ${String(input.IdentityStoreId)} does not exist.`);
  };
  const view = (user: FakeUser) => ({
    IdentityStoreId: model.identityStoreId,
    UserId: user.userId,
    UserName: user.userName,
    DisplayName: user.userName,
    ...(user.emails.length > 0 ? { Emails: user.emails.map((Value, i) => ({ Value, Type: 'work', Primary: i === 0 })) } : {}),
    ...(user.externalIds.length > 0 ? { ExternalIds: user.externalIds.map((e) => ({ Issuer: e.issuer, Id: e.id })) } : {}),
  });
  const notFound = () => new AwsError('ResourceNotFoundException', 'USER not found.');
  return {
    GetUserId: (input) => {
      store(input);
      const alternate = input.AlternateIdentifier as Record<string, Record<string, unknown>> | undefined;
      if (!alternate || typeof alternate !== 'object') throw new AwsError('ValidationException', 'AlternateIdentifier must not be null');
      const users = [...model.users.values()];
      if (alternate.ExternalId) {
        const issuer = requireString(alternate.ExternalId, 'Issuer', undefined, 100);
        const id = requireString(alternate.ExternalId, 'Id', undefined, 256);
        const user = users.find((u) => u.externalIds.some((e) => e.issuer === issuer && e.id === id));
        if (!user) throw notFound();
        return { IdentityStoreId: model.identityStoreId, UserId: user.userId };
      }
      const unique = alternate.UniqueAttribute;
      if (!unique) throw new AwsError('ValidationException', 'AlternateIdentifier needs ExternalId or UniqueAttribute');
      const path = requireString(unique, 'AttributePath', undefined, 255).toLowerCase();
      const value = unique.AttributeValue;
      if (typeof value !== 'string') throw new AwsError('ValidationException', 'AttributeValue must be a string');
      let user: FakeUser | undefined;
      if (path === 'username') user = users.find((u) => u.userName === value);
      else if (path === 'emails.value') user = users.find((u) => u.emails.includes(value));
      else throw new AwsError('ValidationException', `Invalid AttributePath ${path}: only userName and emails.value are unique attributes`);
      if (!user) throw notFound();
      return { IdentityStoreId: model.identityStoreId, UserId: user.userId };
    },
    DescribeUser: (input) => {
      store(input);
      const user = model.users.get(requireString(input, 'UserId', PATTERNS.PrincipalId, 47));
      if (!user) throw notFound();
      return view(user);
    },
    ListUsers: (input) => {
      store(input);
      const { items, NextToken } = pageOf([...model.users.values()], page(input, 50));
      return { Users: items.map(view), ...(NextToken ? { NextToken } : {}) };
    },
  };
}
