import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { parseEntitlement, parseTarget, targetProblems } from './settings.js';

const INSTANCE = 'arn:aws:sso:::instance/ssoins-1111222233334444';
const PS = 'arn:aws:sso:::permissionSet/ssoins-1111222233334444/ps-aaaabbbbccccdddd';
const PS2 = 'arn:aws:sso:::permissionSet/ssoins-1111222233334444/ps-eeeeffff00001111';

function target(settings: Record<string, unknown>, entitlements: Record<string, Record<string, unknown>>): TargetConfig {
  return {
    name: 'aws',
    connector: 'aws-identity-center',
    description: '',
    settings,
    labels: {},
    entitlements: new Map(Object.entries(entitlements).map(([name, s]) => [name, { name, target: 'aws', description: '', settings: s, labels: {} }])),
  };
}

const BASE = { region: 'eu-west-1', instanceArn: INSTANCE, identityStoreId: 'd-0123456789' };

describe('aws-identity-center settings', () => {
  it('accepts a minimal target and defaults to userName, no session revocation', () => {
    const t = target(BASE, { admin: { permissionSet: PS, accounts: ['222233334444', '111122223333'] } });
    expect(targetProblems(t)).toEqual([]);
    const parsed = parseTarget(t);
    expect(parsed).toMatchObject({ userAttribute: 'userName', revokeSessions: false, pollIntervalMs: 500, userCacheMs: 60_000 });
    expect(parseEntitlement(parsed, t.entitlements.get('admin')!)).toEqual({
      permissionSet: PS,
      accounts: ['111122223333', '222233334444'],
      revokeSessions: false,
    });
  });

  it('lets an entitlement override revokeSessions', () => {
    const t = target({ ...BASE, revokeSessions: true }, { a: { permissionSet: PS, accounts: ['111122223333'], revokeSessions: false } });
    expect(parseEntitlement(parseTarget(t), t.entitlements.get('a')!).revokeSessions).toBe(false);
  });

  it('says where each problem is and how to fix it', () => {
    const problems = targetProblems(
      target(
        { ...BASE, instanceArn: 'arn:aws:sso:::instance/nope', identityStoreId: 'store', userAttribute: 'displayName', pollIntervalMs: 1, colour: 'red' },
        {
          a: { permissionSet: 'arn:aws:iam::111122223333:role/x', accounts: [] },
          b: { permissionSet: PS, accounts: [111122223333, '12345', '111122223333'] },
          c: { permissionSet: PS, accounts: ['111122223333', '111122223333'], extra: 1 },
        },
      ),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('targets.aws.settings.instanceArn: must be an IAM Identity Center instance ARN'),
        expect.stringContaining('targets.aws.settings.identityStoreId: must be the instance'),
        expect.stringContaining('targets.aws.settings.userAttribute: must be one of userName, email, externalId'),
        expect.stringContaining('targets.aws.settings.pollIntervalMs: must be a whole number from 10 to 5000'),
        expect.stringContaining('targets.aws.settings.colour: unknown setting'),
        expect.stringContaining('targets.aws.entitlements.a.settings.permissionSet: must be a permission set ARN'),
        expect.stringContaining('targets.aws.entitlements.a.settings.accounts: must be a list of 1 to 100 AWS account ids'),
        "targets.aws.entitlements.b.settings.accounts[0]: quote the account id ('111122223333'): YAML reads it as a number",
        'targets.aws.entitlements.b.settings.accounts[1]: must be a 12-digit AWS account id',
        'targets.aws.entitlements.c.settings.accounts: lists an account twice; remove the duplicate',
        expect.stringContaining('targets.aws.entitlements.c.settings.extra: unknown setting'),
      ]),
    );
  });

  it('needs an issuer for external ids, and only then', () => {
    expect(targetProblems(target({ ...BASE, userAttribute: 'externalId' }, {}))).toEqual([
      expect.stringContaining('targets.aws.settings.externalIdIssuer: userAttribute externalId needs the issuer'),
    ]);
    expect(targetProblems(target({ ...BASE, userAttribute: 'externalId', externalIdIssuer: 'https://idp.example.com' }, {}))).toEqual([]);
    expect(targetProblems(target({ ...BASE, externalIdIssuer: 'x' }, {}))).toEqual([expect.stringContaining('only used with userAttribute: externalId')]);
  });

  it('refuses a permission set of another instance', () => {
    const other = 'arn:aws:sso:::permissionSet/ssoins-9999888877776666/ps-aaaabbbbccccdddd';
    expect(targetProblems(target(BASE, { a: { permissionSet: other, accounts: ['111122223333'] } }))).toEqual([
      expect.stringContaining('belongs to instance ssoins-9999888877776666, not to the target'),
    ]);
  });

  it('refuses entitlements of one permission set whose account lists overlap without being equal', () => {
    const same = target(BASE, { a: { permissionSet: PS, accounts: ['111122223333'] }, b: { permissionSet: PS, accounts: ['111122223333'] } });
    expect(targetProblems(same)).toEqual([]);
    const disjoint = target(BASE, { a: { permissionSet: PS, accounts: ['111122223333'] }, b: { permissionSet: PS, accounts: ['222233334444'] } });
    expect(targetProblems(disjoint)).toEqual([]);
    const otherSet = target(BASE, {
      a: { permissionSet: PS, accounts: ['111122223333'] },
      b: { permissionSet: PS2, accounts: ['111122223333', '2'.repeat(12)] },
    });
    expect(targetProblems(otherSet)).toEqual([]);
    const overlapping = target(BASE, {
      a: { permissionSet: PS, accounts: ['111122223333', '222233334444'] },
      b: { permissionSet: PS, accounts: ['222233334444'] },
    });
    expect(targetProblems(overlapping)).toEqual([
      expect.stringContaining('targets.aws.entitlements.b.settings.accounts: shares account 222233334444 with entitlement a on the same permission set'),
    ]);
  });

  it('refuses to parse a target with problems, with every problem attached', () => {
    expect(() => parseTarget(target({ region: 'eu-west-1' }, {}))).toThrow(/instanceArn/);
  });
});
