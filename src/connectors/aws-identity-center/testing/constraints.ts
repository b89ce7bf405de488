import { AwsError } from '../../aws/testing/aws-fake.js';

/**
 * The input checks the IAM Identity Center and Identity Store endpoints apply before an operation
 * runs, as the SDK models (sso-admin 2020-07-20, identitystore 2020-06-15) state them: required
 * members, length bounds, patterns and enums, each failing with a `ValidationException` worded as
 * AWS words it ("1 validation error detected: Value … at '…' failed to satisfy constraint: …").
 */

export const PATTERNS = {
  InstanceArn: /^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso:::instance\/(sso)?ins-[a-zA-Z0-9-.]{16}$/,
  PermissionSetArn: /^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso:::permissionSet\/(sso)?ins-[a-zA-Z0-9-.]{16}\/ps-[a-zA-Z0-9-./]{16}$/,
  AccountId: /^\d{12}$/,
  PrincipalId: /^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$/,
  RequestId: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  IdentityStoreId: /^(d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/,
} as const;

export type Input = Record<string, unknown>;

function invalid(member: string, value: unknown, constraint: string): AwsError {
  const shown = typeof value === 'string' ? value.slice(0, 100) : JSON.stringify(value);
  return new AwsError('ValidationException', `1 validation error detected: Value '${shown}' at '${member}' failed to satisfy constraint: ${constraint}`);
}

/** A required string member matching `pattern` (and the model's length bounds). */
export function requireString(input: Input, member: string, pattern?: RegExp, max = 1224): string {
  const value = input[member];
  if (value === undefined || value === null) throw invalid(member, value, 'Member must not be null');
  if (typeof value !== 'string') throw new AwsError('SerializationException', `${member} must be a string`);
  if (value.length === 0 || value.length > max) throw invalid(member, value, `Member must have length between 1 and ${max}`);
  if (pattern && !pattern.test(value)) throw invalid(member, value, `Member must satisfy regular expression pattern: ${pattern.source}`);
  return value;
}

export function requireEnum<T extends string>(input: Input, member: string, values: readonly T[]): T {
  const value = input[member];
  if (value === undefined || value === null) throw invalid(member, value, 'Member must not be null');
  if (typeof value !== 'string' || !(values as readonly string[]).includes(value))
    throw invalid(member, value, `Member must satisfy enum value set: [${values.join(', ')}]`);
  return value as T;
}

/** Optional MaxResults (1..100) and NextToken (an offset this fake issued). */
export function page(input: Input, defaultSize = 20): { start: number; size: number } {
  const max = input.MaxResults;
  if (max !== undefined && (!Number.isInteger(max) || (max as number) < 1 || (max as number) > 100))
    throw invalid('maxResults', max, 'Member must have value between 1 and 100');
  const token = input.NextToken;
  let start = 0;
  if (token !== undefined) {
    const decoded = typeof token === 'string' ? /^offset:(\d{1,9})$/.exec(Buffer.from(token, 'base64').toString('utf8')) : null;
    if (!decoded) throw new AwsError('ValidationException', 'The NextToken is not valid.');
    start = Number(decoded[1]);
  }
  return { start, size: (max as number | undefined) ?? defaultSize };
}

/** One page of `items` and the token for the next, if any. */
export function pageOf<T>(items: readonly T[], { start, size }: { start: number; size: number }): { items: T[]; NextToken?: string } {
  const slice = items.slice(start, start + size);
  const next = start + size < items.length ? Buffer.from(`offset:${start + size}`).toString('base64') : undefined;
  return { items: slice, ...(next ? { NextToken: next } : {}) };
}

/**
 * Whether an identity-based Deny in `policy` applies to a request by `userId` in `account` at
 * `at`. Only what a deny-until statement needs is understood (Action/Resource "*", StringEquals,
 * DateLessThan/DateGreaterThan on aws:CurrentTime); any other
 * operator or key throws, so a statement the fake cannot judge is never taken as harmless.
 */
export function denies(policy: string, request: { userId: string; account: string; at: Date }): boolean {
  if (policy === '') return false;
  const parsed = JSON.parse(policy) as { Statement?: unknown };
  const statements = (Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement]) as Record<string, unknown>[];
  const context: Record<string, string> = {
    'identitystore:userid': request.userId,
    'aws:principalaccount': request.account,
    'aws:currenttime': request.at.toISOString(),
  };
  return statements.some((statement) => {
    if (statement.Effect !== 'Deny') return false;
    const all = (value: unknown) => value === '*' || (Array.isArray(value) && value.includes('*'));
    if (!all(statement.Action) || !all(statement.Resource)) throw new Error('the fake judges only Deny statements on Action "*" and Resource "*"');
    const conditions = (statement.Condition ?? {}) as Record<string, Record<string, string | string[]>>;
    return Object.entries(conditions).every(([operator, keys]) =>
      Object.entries(keys).every(([key, wanted]) => {
        const actual = context[key.toLowerCase()];
        if (actual === undefined) throw new Error(`the fake does not know condition key ${key}`);
        const values = Array.isArray(wanted) ? wanted : [wanted];
        if (operator === 'StringEquals') return values.includes(actual);
        if (operator === 'DateLessThan') return values.some((v) => Date.parse(actual) < Date.parse(v));
        if (operator === 'DateGreaterThan') return values.some((v) => Date.parse(actual) > Date.parse(v));
        throw new Error(`the fake does not evaluate condition operator ${operator}`);
      }),
    );
  });
}
