import { isAbsolute } from 'node:path';
import { isIP } from 'node:net';
import type { EntitlementConfig, TargetConfig } from '../../config/types.js';

/**
 * The ssh connector's settings, checked by hand so each problem names its YAML path.
 *
 * Target: where the CA key comes from (`caPrivateKey`, a secret reference, or `caKeyPath`, a file
 * Lapse generates), where the KRL goes (`krlPath`), and hints for the printed ssh command.
 * Entitlement: the certificate's principals, extensions and critical options.
 */
export interface SshTargetSettings {
  /** OpenSSH or PEM private key text, already resolved from its secret reference. */
  readonly caPrivateKey: string | null;
  readonly caKeyPath: string | null;
  readonly krlPath: string;
  readonly host: string | null;
  readonly port: number;
  /** Lapse principal id -> principal name on the servers, for `requesterPrincipal` entitlements. */
  readonly accounts: Readonly<Record<string, string>>;
}

export interface SshEntitlementSettings {
  readonly principals: readonly string[];
  /** Adds the requester's own account (principal id, or mapped by `accounts`) to the principals. */
  readonly requesterPrincipal: boolean;
  readonly extensions: readonly string[];
  readonly forceCommand: string | null;
  readonly sourceAddress: readonly string[];
}

/** The extensions OpenSSH knows for user certificates (PROTOCOL.certkeys), minus FIDO-only ones. */
export const KNOWN_EXTENSIONS = ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc'] as const;
export const DEFAULT_EXTENSIONS = ['permit-pty'];

/**
 * A certificate principal: a login name, or a token listed in an AuthorizedPrincipalsFile. No
 * commas, spaces or wildcards, which sshd and ssh-keygen treat as list separators or patterns.
 */
const PRINCIPAL = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]{2,45}\]$/;
const MAX_PRINCIPALS = 32;
const MAX_PATH = 4096;
const MAX_FORCE_COMMAND = 1024;

export function isPrincipalName(value: unknown): value is string {
  return typeof value === 'string' && PRINCIPAL.test(value);
}

export const PRINCIPAL_RULE = '1-64 characters of letters, digits, "_", ".", "@" and "-", not starting with "." "@" or "-"';

/** Offline check of a target's and its entitlements' settings. */
export function validateSshSettings(target: TargetConfig): string[] {
  const problems: string[] = [];
  const at = (key: string) => `targets.${target.name}.settings.${key}`;
  const s = target.settings;
  const known = new Set(['caPrivateKey', 'caKeyPath', 'krlPath', 'host', 'port', 'accounts']);
  for (const key of Object.keys(s)) if (!known.has(key)) problems.push(`${at(key)}: unknown setting; the ssh connector takes ${[...known].join(', ')}`);

  const hasSecret = s.caPrivateKey !== undefined;
  const hasPath = s.caKeyPath !== undefined;
  if (hasSecret === hasPath) {
    problems.push(
      `${at('caPrivateKey')}: set exactly one of caPrivateKey (\${file:...} or \${env:...} holding an Ed25519 private key) or caKeyPath (a file Lapse creates if absent)`,
    );
  }
  if (hasSecret && (typeof s.caPrivateKey !== 'string' || s.caPrivateKey.trim() === '')) {
    problems.push(`${at('caPrivateKey')}: must be a secret reference to an unencrypted Ed25519 private key (OpenSSH or PEM)`);
  }
  if (hasPath) problems.push(...absolutePath(s.caKeyPath, at('caKeyPath')));
  if (s.krlPath === undefined) problems.push(`${at('krlPath')}: required; the file sshd reads with RevokedKeys (e.g. /var/lib/lapse/ssh/revoked.krl)`);
  else problems.push(...absolutePath(s.krlPath, at('krlPath')));
  if (s.host !== undefined && (typeof s.host !== 'string' || !HOST.test(s.host))) {
    problems.push(`${at('host')}: must be a host name or [IPv6] address (used only in the ssh command Lapse prints)`);
  }
  if (s.port !== undefined && (typeof s.port !== 'number' || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535)) {
    problems.push(`${at('port')}: must be a port number from 1 to 65535`);
  }
  if (s.accounts !== undefined) {
    if (!isPlainObject(s.accounts)) problems.push(`${at('accounts')}: must map Lapse principal ids to login names, e.g. { alice@example.com: alice }`);
    else {
      for (const [principalId, account] of Object.entries(s.accounts)) {
        if (!isPrincipalName(account)) problems.push(`${at('accounts')}.${principalId}: must be a login name: ${PRINCIPAL_RULE}`);
      }
    }
  }
  for (const entitlement of target.entitlements.values()) problems.push(...validateEntitlement(target, entitlement));
  return problems;
}

function validateEntitlement(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const problems: string[] = [];
  const at = (key: string) => `targets.${target.name}.entitlements.${entitlement.name}.settings.${key}`;
  const s = entitlement.settings;
  const known = new Set(['principals', 'requesterPrincipal', 'extensions', 'forceCommand', 'sourceAddress']);
  for (const key of Object.keys(s)) if (!known.has(key)) problems.push(`${at(key)}: unknown setting; ssh entitlements take ${[...known].join(', ')}`);

  if (s.requesterPrincipal !== undefined && typeof s.requesterPrincipal !== 'boolean') problems.push(`${at('requesterPrincipal')}: must be true or false`);
  if (s.principals === undefined) {
    if (s.requesterPrincipal !== true)
      problems.push(
        `${at('principals')}: required: the login names (or AuthorizedPrincipalsFile tokens) the certificate is valid for, unless requesterPrincipal: true`,
      );
  } else if (!Array.isArray(s.principals) || s.principals.length > MAX_PRINCIPALS || (s.principals.length === 0 && s.requesterPrincipal !== true)) {
    problems.push(`${at('principals')}: must be a list of 1 to ${MAX_PRINCIPALS} principal names`);
  } else {
    s.principals.forEach((p, i) => {
      if (!isPrincipalName(p)) problems.push(`${at('principals')}[${i}]: ${JSON.stringify(p).slice(0, 80)} is not a principal name: ${PRINCIPAL_RULE}`);
    });
    if (new Set(s.principals).size !== s.principals.length) problems.push(`${at('principals')}: lists a principal twice`);
  }

  if (s.extensions !== undefined) {
    if (!Array.isArray(s.extensions) || s.extensions.length > KNOWN_EXTENSIONS.length) {
      problems.push(`${at('extensions')}: must be a list drawn from ${KNOWN_EXTENSIONS.join(', ')}`);
    } else {
      s.extensions.forEach((e, i) => {
        if (!(KNOWN_EXTENSIONS as readonly unknown[]).includes(e))
          problems.push(`${at('extensions')}[${i}]: ${JSON.stringify(e).slice(0, 80)} is not one of ${KNOWN_EXTENSIONS.join(', ')}`);
      });
      if (new Set(s.extensions).size !== s.extensions.length) problems.push(`${at('extensions')}: lists an extension twice`);
    }
  }

  if (s.forceCommand !== undefined) {
    if (typeof s.forceCommand !== 'string' || s.forceCommand.length === 0 || s.forceCommand.length > MAX_FORCE_COMMAND || hasControlCharacter(s.forceCommand)) {
      problems.push(`${at('forceCommand')}: must be one line of 1 to ${MAX_FORCE_COMMAND} characters without control characters`);
    }
  }

  if (s.sourceAddress !== undefined) {
    if (!Array.isArray(s.sourceAddress) || s.sourceAddress.length === 0 || s.sourceAddress.length > MAX_PRINCIPALS) {
      problems.push(`${at('sourceAddress')}: must be a list of 1 to ${MAX_PRINCIPALS} addresses or CIDR blocks, e.g. [10.0.0.0/8]`);
    } else {
      s.sourceAddress.forEach((a, i) => {
        if (!isCidr(a)) problems.push(`${at('sourceAddress')}[${i}]: ${JSON.stringify(a).slice(0, 80)} is not an IP address or CIDR block`);
      });
    }
  }
  return problems;
}

/** Reads settings already accepted by validateSshSettings. */
export function targetSettings(target: TargetConfig): SshTargetSettings {
  const s = target.settings;
  return {
    caPrivateKey: typeof s.caPrivateKey === 'string' ? s.caPrivateKey : null,
    caKeyPath: typeof s.caKeyPath === 'string' ? s.caKeyPath : null,
    krlPath: String(s.krlPath),
    host: typeof s.host === 'string' ? s.host : null,
    port: typeof s.port === 'number' ? s.port : 22,
    accounts: isPlainObject(s.accounts) ? (s.accounts as Record<string, string>) : {},
  };
}

export function entitlementSettings(entitlement: EntitlementConfig): SshEntitlementSettings {
  const s = entitlement.settings;
  return {
    principals: Array.isArray(s.principals) ? (s.principals as string[]) : [],
    requesterPrincipal: s.requesterPrincipal === true,
    extensions: Array.isArray(s.extensions) ? (s.extensions as string[]) : DEFAULT_EXTENSIONS,
    forceCommand: typeof s.forceCommand === 'string' ? s.forceCommand : null,
    sourceAddress: Array.isArray(s.sourceAddress) ? (s.sourceAddress as string[]) : [],
  };
}

function absolutePath(value: unknown, where: string): string[] {
  if (typeof value !== 'string' || !isAbsolute(value) || value.length > MAX_PATH || /[\0\n\r]/.test(value)) {
    return [`${where}: must be an absolute file path`];
  }
  return [];
}

function hasControlCharacter(value: string): boolean {
  return [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

function isCidr(value: unknown): boolean {
  if (typeof value !== 'string' || value.length > 64) return false;
  const [address, prefix, extra] = value.split('/');
  if (extra !== undefined || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
