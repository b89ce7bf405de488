import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { ListInstancesCommand, SSOAdminClient } from '@aws-sdk/client-sso-admin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsError, AwsFake } from './aws-fake.js';

const KEY = { accessKeyId: 'AKIAFAKEFAKEFAKE0001', secretAccessKey: 'fake-secret-key-for-tests-only-000000' };

describe('the AWS fake checks what AWS checks at the door', () => {
  const fake = new AwsFake('eu-west-1');
  let endpoint = '';
  beforeAll(async () => {
    fake.addKey(KEY.accessKeyId, KEY.secretAccessKey, 'arn:aws:iam::111122223333:user/lapse');
    fake.query('sts', '2011-06-15', 'https://sts.amazonaws.com/doc/2011-06-15/', {
      GetCallerIdentity: (_params, caller) => ({ Arn: caller.identity, Account: '111122223333', UserId: caller.accessKeyId }),
    });
    fake.json('sso', 'SWBExternalService', {
      ListInstances: () => ({ Instances: [{ InstanceArn: 'arn:aws:sso:::instance/ssoins-1', IdentityStoreId: 'd-1' }] }),
    });
    endpoint = await fake.listen();
  });
  afterAll(() => fake.close());

  const sts = (secretAccessKey = KEY.secretAccessKey) =>
    new STSClient({ region: 'eu-west-1', endpoint, credentials: { ...KEY, secretAccessKey }, maxAttempts: 1 });

  it('answers a correctly signed Query call (STS) and a JSON 1.1 call (IAM Identity Center)', async () => {
    const me = await sts().send(new GetCallerIdentityCommand({}));
    expect(me.Arn).toBe('arn:aws:iam::111122223333:user/lapse');
    const sso = new SSOAdminClient({ region: 'eu-west-1', endpoint, credentials: KEY, maxAttempts: 1 });
    const instances = await sso.send(new ListInstancesCommand({}));
    expect(instances.Instances?.[0]?.IdentityStoreId).toBe('d-1');
    expect(fake.calls.map((c) => `${c.service}:${c.operation}`)).toEqual(['sts:GetCallerIdentity', 'sso:ListInstances']);
  });

  it('refuses a wrong secret, an unknown key and another region', async () => {
    await expect(sts('wrong-secret-key-for-tests-only-00000').send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    const unknown = new STSClient({ region: 'eu-west-1', endpoint, credentials: { ...KEY, accessKeyId: 'AKIAUNKNOWNUNKNOWN01' }, maxAttempts: 1 });
    await expect(unknown.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({ name: 'InvalidClientTokenId' });
    const elsewhere = new STSClient({ region: 'us-west-2', endpoint, credentials: KEY, maxAttempts: 1 });
    await expect(elsewhere.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
  });

  it('injects failures, which the SDK retries when AWS would be retried (throttling)', async () => {
    let throttles = 2;
    const remove = fake.inject((call) =>
      call.operation === 'GetCallerIdentity' && throttles-- > 0 ? new AwsError('Throttling', 'Rate exceeded', 400) : undefined,
    );
    try {
      const retrying = new STSClient({ region: 'eu-west-1', endpoint, credentials: KEY, maxAttempts: 3, retryMode: 'standard' });
      await expect(retrying.send(new GetCallerIdentityCommand({}))).resolves.toMatchObject({ Account: '111122223333' });
      expect(throttles).toBe(-1);
    } finally {
      remove();
    }
  });
});
