import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { AzureTarget } from './settings.js';

/**
 * Turns what the Azure SDK throws into LapseErrors that say what failed, where, and how to fix it:
 * ARM's `{ error: { code, message } }` (the SDK's RestError), token failures from
 * `@azure/identity`, network and TLS failures, and deadlines. Messages from Azure never contain
 * Lapse's secret; they are still cut to a bounded length.
 */
export interface ArmFailure {
  readonly status: number | undefined;
  readonly code: string;
  readonly message: string;
}

/** The status, code and message of a RestError (duck-typed: the class lives in a transitive package). */
export function armFailure(error: unknown): ArmFailure | undefined {
  if (typeof error !== 'object' || error === null || (error as Error).name !== 'RestError') return undefined;
  const e = error as { statusCode?: number; code?: string; message?: string };
  return { status: e.statusCode, code: e.code ?? 'Unknown', message: String(e.message ?? '').slice(0, 600) };
}

/** Why each PIM rule fails and what to change in the role's PIM settings (or in Lapse). */
const PIM_RULES: Readonly<Record<string, string>> = {
  ExpirationRule:
    "the grant is longer than the role's maximum active assignment duration (PIM role settings > Assignment > Expire active assignments after), or the policy forbids the end Lapse asked for; shorten the policy's max duration in Lapse or raise PIM's",
  JustificationRule: 'the role requires a justification on active assignment; Lapse always sends one, so check the PIM settings for other requirements',
  TicketingRule:
    'the role requires ticket information on active assignment; Lapse sends ticketSystem "Lapse" and the grant id as the ticket number, so check for extra requirements',
  MfaRule:
    'the role requires Azure MFA on active assignment, which an application cannot do; turn off "Require Azure Multi-Factor Authentication on active assignment" for this role, or use mode: assignment',
  EligibilityRule: 'the request needs an eligible assignment; Lapse makes active assignments (AdminAssign), which do not',
  ApprovalRule: 'the role requires approval for this request; Lapse has its own approvals, so remove PIM approval for active assignment',
  AuthenticationContextRule:
    'the role requires a Conditional Access authentication context, which an application cannot satisfy; remove it for active assignment or use mode: assignment',
};

export function toLapseError(
  error: unknown,
  context: { target: TargetConfig; settings: AzureTarget; what: string; action: string; scope: string; signal: AbortSignal; timedOut: boolean },
): LapseError {
  const { target, settings, what, action, scope } = context;
  const where = `targets.${target.name}`;
  const prefix = `azure-rbac target ${target.name}: ${what}`;
  if (error instanceof LapseError) return error;
  if (context.signal.aborted)
    return new LapseError('connector_timeout', `${prefix} did not finish before its deadline`, {
      where,
      hint: 'check that ARM and the authority are reachable from Lapse, or raise scheduler.connectorTimeout',
    });
  if (context.timedOut)
    return new LapseError('connector_failed', `${prefix}: no answer within ${settings.timeoutMs} ms`, {
      where: `${where}.settings.timeoutMs`,
      hint: `check that ${settings.endpoint} is reachable from Lapse`,
    });
  const name = (error as Error | undefined)?.name ?? '';
  const text = String((error as Error | undefined)?.message ?? error);
  if (!armFailure(error)?.status && /certificate|self.signed|CERT_|unable to verify/i.test(text)) {
    return new LapseError('connector_failed', `${prefix} failed: ${text.slice(0, 300)}`, {
      where: `${where}.settings.tls.ca`,
      hint: `the server certificate of ${settings.endpoint} or ${settings.authorityHost} is not trusted: give the CA that issued it as tls.ca (\${file:/path/to/ca.pem})`,
    });
  }
  // NB. @azure/identity reports a refused sign-in under several names, by credential and version.
  if (/^(Aggregate)?Authentication(Required)?Error$|^CredentialUnavailableError$/.test(name)) {
    // NB. MSAL reports an unreachable or untrusted authority only as "endpoints_resolution_error".
    const metadata = text.includes('endpoints_resolution_error');
    const hint = metadata
      ? `Lapse could not read ${settings.authorityHost}/${settings.tenantId}/v2.0/.well-known/openid-configuration: check authorityHost and tenantId, that the authority is reachable, and that its certificate is trusted (tls.ca for a private CA)`
      : settings.credential === 'managedIdentity'
        ? 'no client secret or certificate is set, so Lapse uses its managed identity: run Lapse on Azure with one assigned (set clientId for a user-assigned identity), or give clientSecret/clientCertificate'
        : 'check tenantId, clientId and the secret or certificate (has it expired?), and that authorityHost belongs to the same cloud as endpoint';
    return new LapseError(
      'connector_failed',
      `${prefix}: could not get a token for ${settings.endpoint} from ${settings.authorityHost}: ${text.slice(0, 500)}`,
      {
        where: `${where}.settings${metadata ? '.authorityHost' : ''}`,
        hint,
      },
    );
  }
  const failure = armFailure(error);
  if (!failure || failure.status === undefined) {
    return new LapseError('connector_failed', `${prefix} failed: ${text.slice(0, 300)}`, {
      where: `${where}.settings.endpoint`,
      hint: `check that ${settings.endpoint} (ARM) and ${settings.authorityHost} are reachable from Lapse`,
    });
  }
  const said = `${failure.code}: ${failure.message}`;
  if (failure.status === 401) {
    return new LapseError('connector_failed', `${prefix}: ARM refused Lapse's token (${said})`, {
      where: `${where}.settings`,
      hint: 'check that endpoint is the Resource Manager of the cloud authorityHost signs in to, and that tenantId is the tenant the subscriptions trust',
    });
  }
  if (failure.status === 403) {
    const missing = /perform action '([^']{1,200})'/.exec(failure.message)?.[1] ?? action;
    return new LapseError('connector_failed', `${prefix}: Lapse's identity may not ${missing} at ${scope} (${failure.code})`, {
      where: `${where}.settings.clientId`,
      missingPermission: missing,
      hint: `assign Lapse's identity the custom role "Lapse JIT access broker" (docs/connectors/azure-rbac.md has its JSON; it must include ${missing}) at ${scope} or above; role assignments can take a few minutes to apply`,
    });
  }
  if (failure.code === 'RoleAssignmentRequestPolicyValidationFailed') {
    const rules = [...failure.message.matchAll(/"(\w+Rule)"/g)].map((m) => m[1]!);
    const hints = rules.map((rule) => `${rule}: ${PIM_RULES[rule] ?? 'see the role management policy of this role'}`);
    return new LapseError('connector_failed', `${prefix}: the PIM settings of the role at ${scope} refused the request (${said})`, {
      where: `${where}.entitlements`,
      failedRules: rules,
      hint: hints.length > 0 ? hints.join('; ') : 'read the role management policy of this role (PIM > Azure resources > Settings)',
    });
  }
  const hints: Readonly<Record<string, string>> = {
    PrincipalNotFound: 'check the object id in settings.objectIds; a principal created a moment ago may take a few minutes to replicate to ARM',
    RoleDefinitionDoesNotExist: 'check the entitlement\'s role (az role definition list --name "<role>" --scope <scope>)',
    UnmatchedPrincipalType: 'set settings.principalType to the type of these principals (User, Group or ServicePrincipal)',
    SubscriptionNotFound: "check the subscription id in the entitlement's scope, and that it belongs to tenantId",
    InvalidApiVersionParameter:
      'this ARM endpoint does not serve the API versions Lapse uses (2022-04-01, 2020-10-01 for PIM): use mode: assignment on clouds without PIM',
    TooManyRequests: 'ARM throttled the calls even after retries; Lapse retries the grant with backoff',
  };
  return new LapseError('connector_failed', `${prefix} answered HTTP ${failure.status} (${said})`, {
    where,
    hint: hints[failure.code] ?? (failure.status >= 500 ? 'Azure had an internal error; Lapse retries' : `see Azure's message; the request was for ${scope}`),
  });
}
