import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { awsTargetProblems, parseAwsTarget } from './aws-settings.js';

function target(settings: Record<string, unknown>): TargetConfig {
  return { name: 'aws', connector: 'aws-iam-role', description: '', settings, labels: {}, entitlements: new Map() };
}

describe('shared AWS target settings', () => {
  it('accepts a region alone (default credential chain) and full settings', () => {
    expect(awsTargetProblems(target({ region: 'eu-west-1' }), [])).toEqual([]);
    const full = target({
      region: 'us-gov-west-1',
      credentials: { accessKeyId: 'AKIAABCDEFGHIJKLMNOP', secretAccessKey: 'x'.repeat(40) },
      endpoints: { sts: 'https://sts.us-gov-west-1.amazonaws.com', iam: 'http://127.0.0.1:9000' },
      maxAttempts: 8,
      timeoutMs: 5000,
    });
    expect(awsTargetProblems(full, [])).toEqual([]);
    expect(parseAwsTarget(full)).toMatchObject({ region: 'us-gov-west-1', maxAttempts: 8, timeoutMs: 5000, insecureSkipVerify: false });
  });

  it('says where each problem is and how to fix it', () => {
    const problems = awsTargetProblems(
      target({
        region: 'Europe',
        credentials: { accessKeyId: 'nope', secretAccessKey: 'short' },
        endpoints: { sso: 'http://sso.example.com', s3: 'https://s3.amazonaws.com' },
        maxAttempts: 0,
        colour: 'blue',
      }),
      ['instanceArn'],
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('targets.aws.settings.region: must be an AWS region name'),
        expect.stringContaining('targets.aws.settings.credentials.accessKeyId: must be an AWS access key id'),
        expect.stringContaining('targets.aws.settings.credentials.secretAccessKey: must be a secret reference'),
        expect.stringContaining('targets.aws.settings.endpoints.sso: plain http to sso.example.com'),
        expect.stringContaining('targets.aws.settings.endpoints.s3: unknown service'),
        expect.stringContaining('targets.aws.settings.maxAttempts: must be a whole number from 1 to 10'),
        expect.stringContaining('targets.aws.settings.colour: unknown setting'),
      ]),
    );
    expect(problems.some((p) => p.includes('instanceArn'))).toBe(true); // listed among the known keys
  });
});
