import { DeleteRolePolicyCommand, GetRoleCommand, GetRolePolicyCommand, IAMClient, ListRolePoliciesCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { STSClient } from '@aws-sdk/client-sts';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { awsClientConfig, type AwsTarget } from '../aws/index.js';

/**
 * The STS and IAM clients of a target, and the few IAM calls on one role's inline policies the
 * connector makes, with AWS's failures turned into LapseErrors that name the missing permission.
 */
export interface RoleClients {
  readonly sts: STSClient;
  readonly iam: IAMClient;
}

const clients = new WeakMap<TargetConfig, RoleClients>();

/** One pair of clients per target config (a reload builds new configs, so new clients). */
export function clientsFor(target: TargetConfig, settings: AwsTarget): RoleClients {
  let pair = clients.get(target);
  if (!pair) {
    const iam = new IAMClient(awsClientConfig(target, settings, 'iam'));
    iam.middlewareStack.add(policySizeIsNotThrottling, { step: 'finalizeRequest', priority: 'low', name: 'lapsePolicySizeIsNotThrottling' });
    pair = { sts: new STSClient(awsClientConfig(target, settings, 'sts')), iam };
    clients.set(target, pair);
  }
  return pair;
}

/** IAM's answer when a role's inline policies together would pass 10,240 characters. */
export class PolicyTooLarge extends Error {
  override readonly name = 'PolicyTooLarge';
}

/**
 * NB. IAM reports a full inline policy budget as `LimitExceeded`, which the SDK classifies as
 * throttling and retries with backoff; retrying cannot make a policy smaller. Sitting inside the
 * retry middleware, this turns it into an error the SDK does not retry, so the writer can make room
 * at once.
 */
const policySizeIsNotThrottling =
  <I, O>(next: (args: I) => Promise<O>) =>
  async (args: I): Promise<O> => {
    try {
      return await next(args);
    } catch (error) {
      if ((error as Error).name === 'LimitExceededException') throw new PolicyTooLarge((error as Error).message);
      throw error;
    }
  };

/** A LapseError for an AWS call that failed, naming the missing permission when AWS does. */
export function awsFailure(target: TargetConfig, what: string, error: unknown, signal: AbortSignal): LapseError {
  if (error instanceof LapseError) return error;
  const prefix = `aws-iam-role target ${target.name}: ${what}`;
  if (signal.aborted) return new LapseError('connector_timeout', `${prefix} did not finish before the deadline`, { where: `targets.${target.name}` });
  const name = (error as Error).name ?? 'Error';
  const message = String((error as Error).message ?? error).slice(0, 500);
  const action = /not authorized to perform: ([\w-]+:\w+)/.exec(message)?.[1];
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || action) {
    return new LapseError('connector_failed', `${prefix} was refused: ${message}`, {
      where: `targets.${target.name}.settings.credentials`,
      hint: action ? permissionHint(action) : 'grant Lapse the permissions in docs/connectors/aws-iam-role.md',
      missingPermission: action ?? null,
    });
  }
  if (['InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'UnrecognizedClientException'].includes(name)) {
    return new LapseError('connector_failed', `${prefix} failed: AWS did not accept Lapse's credentials (${name})`, {
      where: `targets.${target.name}.settings.credentials`,
      hint: 'check the access key references in settings.credentials, or the default credential chain Lapse runs with',
    });
  }
  return new LapseError('connector_failed', `${prefix} failed: ${name}: ${message}`, { where: `targets.${target.name}` });
}

/** How to grant an action AWS named as missing: trust-policy actions go on the role, the rest on Lapse's identity. */
export function permissionHint(action: string): string {
  if (['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'].includes(action)) {
    return (
      `allow ${action} for Lapse's identity both in its own IAM policy and in the role's trust policy, e.g. ` +
      `{"Effect":"Allow","Principal":{"AWS":"<Lapse's role or user ARN>"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}`
    );
  }
  return `grant Lapse's identity ${action} on the brokered roles, e.g. {"Effect":"Allow","Action":"${action}","Resource":"arn:aws:iam::<account>:role/<path>/*"}`;
}

/** The IAM calls on one role's inline policies that the revocation writer needs. */
export class RolePolicies {
  constructor(
    private readonly iam: IAMClient,
    readonly roleName: string,
    private readonly signal: AbortSignal,
  ) {}

  /** The policy document (URL-decoded), or undefined when the role has no such policy. */
  async get(policyName: string): Promise<string | undefined> {
    try {
      const found = await this.iam.send(new GetRolePolicyCommand({ RoleName: this.roleName, PolicyName: policyName }), { abortSignal: this.signal });
      return decodeURIComponent(found.PolicyDocument ?? '');
    } catch (error) {
      if ((error as Error).name === 'NoSuchEntityException' && /policy/i.test((error as Error).message)) return undefined;
      throw error;
    }
  }

  async put(policyName: string, document: string): Promise<void> {
    await this.iam.send(new PutRolePolicyCommand({ RoleName: this.roleName, PolicyName: policyName, PolicyDocument: document }), { abortSignal: this.signal });
  }

  /** Deletes the policy; already gone is fine. */
  async delete(policyName: string): Promise<void> {
    try {
      await this.iam.send(new DeleteRolePolicyCommand({ RoleName: this.roleName, PolicyName: policyName }), { abortSignal: this.signal });
    } catch (error) {
      if ((error as Error).name !== 'NoSuchEntityException') throw error;
    }
  }

  /** Characters (without whitespace) the role's other inline policies use of IAM's shared budget. */
  async othersSize(except: string): Promise<number> {
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const page = await this.iam.send(new ListRolePoliciesCommand({ RoleName: this.roleName, Marker: marker }), { abortSignal: this.signal });
      names.push(...(page.PolicyNames ?? []));
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    let size = 0;
    for (const name of names.filter((n) => n !== except)) size += packedLength((await this.get(name)) ?? '');
    return size;
  }

  async role() {
    const { Role } = await this.iam.send(new GetRoleCommand({ RoleName: this.roleName }), { abortSignal: this.signal });
    return Role!;
  }
}

/** A policy's size as IAM counts it: every character except whitespace outside strings. */
export function packedLength(text: string): number {
  try {
    return JSON.stringify(JSON.parse(text)).length;
  } catch {
    return text.replace(/\s/g, '').length;
  }
}
