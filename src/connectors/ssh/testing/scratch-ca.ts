import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sshpk from 'sshpk';
import type { TargetConfig } from '../../../config/types.js';
import { newId } from '../../../domain/ids.js';
import { serialForGrant } from '../certificate.js';
import { Ledger } from '../ledger.js';
import { SshConnector } from '../ssh-connector.js';

/**
 * A throw-away ssh target for benchmarks: a CA key and KRL in a fresh temporary directory, one
 * entitlement `login` (principal `bench`), and a requester public key. No sshd: a revoke's cost is
 * the ledger and KRL rewrite; sshd reads the file on the next login.
 */
export interface SshScratch {
  readonly target: TargetConfig;
  readonly parameters: Readonly<Record<string, string>>;
  /** Records `count` more live certificates in the ledger in one write (copies of one real one). */
  seed(count: number): Promise<void>;
  close(): void;
}

export function openSshScratch(): SshScratch {
  const dir = mkdtempSync(join(tmpdir(), 'lapse-ssh-scratch-'));
  const entitlement = { name: 'login', target: 'bench-ssh', description: '', settings: { principals: ['bench'] }, labels: {} };
  const target: TargetConfig = {
    name: 'bench-ssh',
    connector: 'ssh',
    description: '',
    settings: { caKeyPath: join(dir, 'ca'), krlPath: join(dir, 'revoked.krl') },
    labels: {},
    entitlements: new Map([[entitlement.name, entitlement]]),
  };
  const publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' });
  const parameters = { sshPublicKey: sshpk.parseKey(publicKey, 'pem').toString('ssh') };
  return {
    target,
    parameters,
    seed: async (count) => {
      const grant = {
        grantId: newId('grant'),
        principalId: 'seed',
        target,
        entitlement,
        durationMs: 3_600_000,
        notAfter: new Date(Date.now() + 3_600_000),
        parameters,
      };
      await new SshConnector().provision(grant, AbortSignal.timeout(60_000));
      await new Ledger(join(dir, 'revoked.krl')).update(AbortSignal.timeout(60_000), (entries) => {
        const model = entries.find((e) => e.grantId === grant.grantId)!;
        for (let i = 1; i < count; i++) {
          const grantId = newId('grant');
          entries.push({ ...model, grantId, serial: String(serialForGrant(grantId)) });
        }
      });
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
