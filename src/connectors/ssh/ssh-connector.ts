import { readFile } from 'node:fs/promises';
import { isId } from '../../domain/ids.js';
import { LapseError } from '../../domain/errors.js';
import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { withinDeadline } from '../shared/index.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, HostTrust, ProvisionResult } from '../types.js';
import { loadCertificateAuthority } from './ca-key.js';
import { keyIdForGrant, serialForGrant, signUserCertificate } from './certificate.js';
import { Ledger, type IssuedCertificate } from './ledger.js';
import { parseRequesterKey } from './public-key.js';
import { entitlementSettings, isPrincipalName, PRINCIPAL_RULE, targetSettings, validateSshSettings } from './settings.js';

/**
 * Lapse as an OpenSSH user-certificate CA. A grant is a certificate for the requester's own public
 * key (request parameter `sshPublicKey`), for the entitlement's principals, valid until the grant's
 * `notAfter`. Early revoke puts the certificate's serial on a KRL that sshd reads (`RevokedKeys`)
 * on every login. See docs/connectors/ssh.md.
 */
export const SSH_PUBLIC_KEY_PARAMETER = 'sshPublicKey';

/** valid-after is backdated this much, so a server whose clock runs a little behind accepts the certificate at once. */
export const CLOCK_SKEW_MS = 60_000;

export class SshConnector implements Connector {
  readonly type = 'ssh';
  /** sshd hosts fetch the CA key (TrustedUserCAKeys) and the KRL (RevokedKeys). */
  readonly hostTrust: HostTrust = {
    caPublicKey: (target) => this.caPublicKey(target),
    revocationList: (target, signal) => this.revocationList(target, signal),
  };

  validateSettings(target: TargetConfig): string[] {
    return validateSshSettings(target);
  }

  validateParameters(_target: TargetConfig, _entitlement: EntitlementConfig, parameters: Readonly<Record<string, string>>): string[] {
    const problems = Object.keys(parameters)
      .filter((name) => name !== SSH_PUBLIC_KEY_PARAMETER)
      .map((name) => `parameters.${name.slice(0, 64)}: ssh entitlements take only ${SSH_PUBLIC_KEY_PARAMETER}`);
    const key = parseRequesterKey(parameters[SSH_PUBLIC_KEY_PARAMETER]);
    if (!key.ok) problems.unshift(`parameters.${SSH_PUBLIC_KEY_PARAMETER}: ${key.problem}`);
    return problems;
  }

  /** Loads (or creates) the CA key and rewrites the KRL, proving Lapse can write where sshd reads. */
  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    await withinDeadline(signal, `checking ssh target ${target.name}`, async () => {
      const settings = targetSettings(target);
      await loadCertificateAuthority(target.name, settings);
      await new Ledger(settings.krlPath).update(signal, () => undefined);
    });
  }

  /** The line to put in sshd's TrustedUserCAKeys file. */
  async caPublicKey(target: TargetConfig): Promise<string> {
    return (await loadCertificateAuthority(target.name, targetSettings(target))).publicKeyLine;
  }

  /** The current KRL bytes (created empty if nothing was revoked yet), to serve to sshd hosts. */
  async revocationList(target: TargetConfig, signal: AbortSignal): Promise<Buffer> {
    const { krlPath } = targetSettings(target);
    return withinDeadline(signal, `reading the KRL of ssh target ${target.name}`, async () => {
      try {
        return await readFile(krlPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await new Ledger(krlPath).update(signal, () => undefined);
        return readFile(krlPath);
      }
    });
  }

  accessKey(grant: GrantSpec): string {
    // NB. Every grant gets its own certificate, so nothing is shared between grants.
    return `${grant.target.name}/${grant.grantId}`;
  }

  provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    return withinDeadline(signal, `issuing the certificate of ${grant.grantId} at ssh target ${grant.target.name}`, () => this.issue(grant, signal));
  }

  private async issue(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    checkGrantId(grant);
    const settings = targetSettings(grant.target);
    const entitlement = entitlementSettings(grant.entitlement);
    const key = parseRequesterKey(grant.parameters[SSH_PUBLIC_KEY_PARAMETER]);
    if (!key.ok) {
      throw new LapseError('validation_failed', `grant ${grant.grantId} has no usable ${SSH_PUBLIC_KEY_PARAMETER}: ${key.problem}`, {
        where: `parameters.${SSH_PUBLIC_KEY_PARAMETER}`,
      });
    }
    const principals = [...entitlement.principals];
    if (entitlement.requesterPrincipal) {
      const account = settings.accounts[grant.principalId] ?? grant.principalId;
      if (!isPrincipalName(account)) {
        throw new LapseError(
          'connector_failed',
          `principal ${JSON.stringify(grant.principalId.slice(0, 80))} is not a login name usable on ssh target ${grant.target.name}`,
          {
            where: `targets.${grant.target.name}.settings.accounts`,
            hint: `Map it to a login name (${PRINCIPAL_RULE}) under settings.accounts.`,
          },
        );
      }
      if (!principals.includes(account)) principals.push(account);
    }
    const now = new Date();
    // NB. Certificate times are whole seconds; rounding down keeps valid-before at or before notAfter.
    const validBefore = new Date(Math.floor(grant.notAfter.getTime() / 1000) * 1000);
    if (validBefore.getTime() <= now.getTime()) {
      throw new LapseError('connector_failed', `grant ${grant.grantId} ends before a certificate could be used`, { where: grant.grantId });
    }
    const ca = await loadCertificateAuthority(grant.target.name, settings);
    signal.throwIfAborted();
    const serial = serialForGrant(grant.grantId);
    const keyId = keyIdForGrant(grant.grantId, grant.principalId);
    const certificate = await signUserCertificate({
      subjectKey: key.key,
      ca: ca.privateKey,
      serial,
      keyId,
      principals,
      validAfter: new Date(Math.floor((now.getTime() - CLOCK_SKEW_MS) / 1000) * 1000),
      validBefore,
      extensions: entitlement.extensions,
      forceCommand: entitlement.forceCommand,
      sourceAddress: entitlement.sourceAddress,
    });
    const issued: IssuedCertificate = {
      serial: serial.toString(),
      grantId: grant.grantId,
      principalId: grant.principalId,
      entitlement: grant.entitlement.name,
      principals,
      keyId,
      validBefore: validBefore.toISOString(),
      ca: ca.publicKeyLine,
      revokedAt: null,
    };
    // NB. Recorded before it is handed out: a certificate Lapse returned is always one it can list and revoke.
    await new Ledger(settings.krlPath).update(signal, (entries) => {
      const index = entries.findIndex((e) => e.serial === issued.serial);
      const existing = entries[index];
      if (existing && existing.grantId !== grant.grantId) {
        throw new LapseError('connector_failed', `certificate serial ${issued.serial} of grant ${grant.grantId} is already used by grant ${existing.grantId}`, {
          where: grant.grantId,
          hint: 'Request again: the new grant gets a different serial.',
        });
      }
      if (existing?.revokedAt) {
        throw new LapseError(
          'connector_failed',
          `grant ${grant.grantId} was revoked at ssh target ${grant.target.name}; its certificate serial is on the KRL`,
          { where: grant.grantId, hint: 'Request access again.' },
        );
      }
      if (existing) entries[index] = issued;
      else entries.push(issued);
    });
    return {
      handle: { serial: issued.serial, keyId },
      credentials: credentialsFor(grant, settings.host, settings.port, certificate, issued),
    };
  }

  /**
   * An extended grant: a certificate's validity cannot change, so a new one (same serial and key
   * id, later valid-before) is issued for the holder to fetch; the old one still works until its
   * own end, and revoking the grant puts the shared serial on the KRL, ending both.
   */
  async extend(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<Pick<ProvisionResult, 'credentials'>> {
    const { credentials } = await this.provision(grant, signal);
    return credentials ? { credentials } : {};
  }

  revoke(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    return withinDeadline(signal, `revoking the certificate of ${grant.grantId} at ssh target ${grant.target.name}`, () => this.revokeSerial(grant, signal));
  }

  private async revokeSerial(grant: GrantSpec, signal: AbortSignal): Promise<void> {
    checkGrantId(grant);
    const serial = serialForGrant(grant.grantId).toString();
    const settings = targetSettings(grant.target);
    // NB. Revocation must keep working when the CA key has become unreadable: the key is only a
    // convenience here (its public half names the KRL section for a grant the ledger lacks).
    const ca = await loadCertificateAuthority(grant.target.name, settings).then(
      (loaded) => ({ line: loaded.publicKeyLine, error: null }),
      (error: unknown) => ({ line: null, error }),
    );
    const now = new Date();
    await new Ledger(settings.krlPath).update(signal, (entries) => {
      const existing = entries.find((e) => e.serial === serial && e.grantId === grant.grantId);
      if (existing) {
        if (existing.revokedAt === null) entries[entries.indexOf(existing)] = { ...existing, revokedAt: now.toISOString() };
        return;
      }
      // Without the key, the CA public key recorded with the latest certificate names the KRL section.
      const caLine = ca.line ?? entries.at(-1)?.ca;
      if (caLine === undefined) throw ca.error;
      // NB. No record (a crash between signing and recording, or a lost ledger): the serial is
      // derived from the grant id, so it is revoked anyway until the grant's own end has passed.
      entries.push({
        serial,
        grantId: grant.grantId,
        principalId: grant.principalId,
        entitlement: grant.entitlement.name,
        principals: [],
        keyId: keyIdForGrant(grant.grantId, grant.principalId),
        validBefore: new Date(Math.max(grant.notAfter.getTime(), now.getTime())).toISOString(),
        ca: caLine,
        revokedAt: now.toISOString(),
      });
    });
  }

  listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    return withinDeadline(signal, `listing the certificates of ssh target ${target.name}`, async () => {
      const now = Date.now();
      const entries = await new Ledger(targetSettings(target).krlPath).read();
      return entries
        .filter((e) => e.revokedAt === null && Date.parse(e.validBefore) > now)
        .map((e) => ({ account: `serial:${e.serial}`, principalId: e.principalId, entitlement: e.entitlement, grantId: e.grantId }));
    });
  }

  removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const serial = access.account.replace(/^serial:/, '');
    return withinDeadline(signal, `revoking certificate serial ${serial} at ssh target ${target.name}`, async () => {
      const now = new Date();
      await new Ledger(targetSettings(target).krlPath).update(signal, (entries) => {
        entries.forEach((e, i) => {
          if (e.serial === serial && e.revokedAt === null) entries[i] = { ...e, revokedAt: now.toISOString() };
        });
      });
    });
  }
}

function checkGrantId(grant: GrantSpec): void {
  // NB. The grant id goes into the key id sshd logs and decides the serial: only Lapse's own ids.
  if (!isId('grant', grant.grantId)) {
    throw new LapseError('validation_failed', `ssh certificates are issued for Lapse grant ids only, not ${JSON.stringify(grant.grantId.slice(0, 80))}`, {
      where: 'grantId',
    });
  }
}

function credentialsFor(grant: GrantSpec, host: string | null, port: number, certificate: string, issued: IssuedCertificate): Record<string, string> {
  const certificateFile = `~/.ssh/lapse-${grant.grantId}-cert.pub`;
  const login = issued.principals[0] ?? 'USER';
  const portOption = port === 22 ? '' : ` -p ${port}`;
  return {
    certificate,
    certificateFile,
    principals: issued.principals.join(','),
    validBefore: issued.validBefore,
    serial: issued.serial,
    keyId: issued.keyId,
    command: `ssh -i ~/.ssh/YOUR_PRIVATE_KEY -o CertificateFile=${certificateFile}${portOption} ${login}@${host ?? 'HOST'}`,
  };
}
