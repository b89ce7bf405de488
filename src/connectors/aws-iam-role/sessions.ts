import type { Credentials } from '@aws-sdk/client-sts';
import { LapseError } from '../../domain/errors.js';
import type { GrantSpec } from '../types.js';
import { MAX_SESSION_SECONDS, MIN_SESSION_SECONDS } from './settings.js';

/**
 * What goes into an AssumeRole call for a grant, and what comes out of it for the requester.
 * AWS's patterns: RoleSessionName and SourceIdentity are 2..64 characters of [\w+=,.@-].
 */
const AWS_NAME = /^[\w+=,.@-]{2,64}$/;

/**
 * `<principal>.<grant>`: the principal with characters AWS refuses replaced by "-", cut so the
 * grant's 26 characters always fit. It shows in the assumed-role ARN and in CloudTrail.
 */
export function sessionName(grant: Pick<GrantSpec, 'grantId' | 'principalId'>): string {
  const grantPart = grant.grantId.replace(/^grt_/, '');
  const principal = grant.principalId.replace(/[^\w+=,.@-]/g, '-').slice(0, 64 - grantPart.length - 1);
  return `${principal || 'lapse'}.${grantPart}`;
}

/**
 * The requester as the session's source identity, which AWS keeps through role chaining and
 * records in CloudTrail. It must match AWS's pattern as is: changing it would record someone else.
 */
export function sourceIdentity(grant: GrantSpec): string {
  const principal = grant.principalId;
  if (!AWS_NAME.test(principal) || principal.toLowerCase().startsWith('aws:')) {
    throw new LapseError(
      'validation_failed',
      `aws-iam-role target ${grant.target.name}: principal "${principal.slice(0, 80)}" cannot be an AWS source identity (2 to 64 characters of letters, digits and _+=,.@-, not starting with "aws:")`,
      {
        where: `grants.${grant.grantId}.principal`,
        hint: 'use principal ids AWS accepts (e.g. the e-mail address from your IdP), or a connector that does not record the requester at AWS',
      },
    );
  }
  return principal;
}

/**
 * How long the session may live: until the grant ends, within the role's MaxSessionDuration and
 * the entitlement's cap. NB. AWS issues no session shorter than 900 s: a grant with less left gets
 * 900 s, and the backstop in the role's policy (and Lapse's revoke) ends it on time.
 */
export function sessionSeconds(notAfter: Date, now: number, roleMaxSeconds: number, capSeconds: number | undefined): number {
  const left = Math.floor((notAfter.getTime() - now) / 1000);
  const longest = Math.min(roleMaxSeconds, capSeconds ?? MAX_SESSION_SECONDS, MAX_SESSION_SECONDS);
  return Math.max(MIN_SESSION_SECONDS, Math.min(left, longest));
}

/** The credentials the requester fetches once, with ready-to-paste forms. */
export function requesterCredentials(credentials: Partial<Credentials>, region: string, roleArn: string, profile: string): Record<string, string> {
  const { AccessKeyId, SecretAccessKey, SessionToken, Expiration } = credentials;
  if (!AccessKeyId || !SecretAccessKey || !SessionToken || !Expiration) {
    throw new LapseError('connector_failed', 'AWS answered AssumeRole without complete credentials', { where: roleArn });
  }
  const expiration = Expiration.toISOString();
  return {
    AccessKeyId,
    SecretAccessKey,
    SessionToken,
    Expiration: expiration,
    region,
    roleArn,
    credentialsFile: [
      `[${profile}]`,
      `aws_access_key_id = ${AccessKeyId}`,
      `aws_secret_access_key = ${SecretAccessKey}`,
      `aws_session_token = ${SessionToken}`,
      '',
    ].join('\n'),
    env: [
      `export AWS_ACCESS_KEY_ID='${AccessKeyId}'`,
      `export AWS_SECRET_ACCESS_KEY='${SecretAccessKey}'`,
      `export AWS_SESSION_TOKEN='${SessionToken}'`,
      `export AWS_REGION='${region}'`,
      '',
    ].join('\n'),
  };
}
