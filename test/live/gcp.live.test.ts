import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/types.js';
import { GcpIamConnector } from '../../src/connectors/index.js';
import { GcpCredentials } from '../../src/connectors/gcp-iam/credentials.js';
import { ResourceManager } from '../../src/connectors/gcp-iam/resource-manager.js';
import { parseTarget } from '../../src/connectors/gcp-iam/settings.js';
import { newId } from '../../src/domain/ids.js';

/**
 * The gcp-iam connector against real Google Cloud: one grant for a probe service account, proven
 * with the probe's own credentials (testIamPermissions answers from enforced IAM), revoked, and
 * proven gone. IAM takes ~2-7 minutes to enforce a written policy, so both proofs poll (bounded).
 *
 *   LAPSE_LIVE_GCP_RESOURCE     projects/<id> (or folders/<n>, organizations/<n>) to grant on
 *   LAPSE_LIVE_GCP_PROBE_MEMBER serviceAccount:<probe>@<project>.iam.gserviceaccount.com, holding nothing there
 *   LAPSE_LIVE_GCP_PROBE_KEY    path to that probe's JSON key
 *   LAPSE_LIVE_GCP_CREDENTIALS  path to Lapse's own key (optional: Application Default Credentials otherwise),
 *                               with roles/resourcemanager.projectIamAdmin (or the custom role in docs) on the resource
 *   LAPSE_LIVE_GCP_ROLE         role to grant (default roles/browser), LAPSE_LIVE_GCP_PERMISSION one of its
 *                               permissions to probe (default resourcemanager.projects.get)
 */
const env = process.env;
const configured = Boolean(env.LAPSE_LIVE_GCP_RESOURCE && env.LAPSE_LIVE_GCP_PROBE_MEMBER && env.LAPSE_LIVE_GCP_PROBE_KEY);
const PROPAGATION_BOUND_MS = 10 * 60_000;

if (!configured) {
  describe('gcp-iam live smoke test', () => {
    it.skip('needs LAPSE_LIVE_GCP_RESOURCE, LAPSE_LIVE_GCP_PROBE_MEMBER and LAPSE_LIVE_GCP_PROBE_KEY (and Lapse credentials: LAPSE_LIVE_GCP_CREDENTIALS or ADC)', () => {});
  });
}

describe.skipIf(!configured)('gcp-iam live smoke test against Google Cloud', () => {
  const resource = env.LAPSE_LIVE_GCP_RESOURCE!;
  const permission = env.LAPSE_LIVE_GCP_PERMISSION ?? 'resourcemanager.projects.get';
  const target = (name: string, settings: Record<string, unknown>): TargetConfig => ({
    name,
    connector: 'gcp-iam',
    description: '',
    settings: { resource, ...settings },
    labels: {},
    entitlements: new Map([
      ['probe', { name: 'probe', target: name, description: '', settings: { role: env.LAPSE_LIVE_GCP_ROLE ?? 'roles/browser' }, labels: {} }],
    ]),
  });

  it(
    'grants the probe the role, the probe can use it, revoke takes it away',
    async () => {
      const connector = new GcpIamConnector();
      const lapseTarget = target('live-gcp', {
        members: { probe: env.LAPSE_LIVE_GCP_PROBE_MEMBER },
        ...(env.LAPSE_LIVE_GCP_CREDENTIALS ? { credentials: readFileSync(env.LAPSE_LIVE_GCP_CREDENTIALS, 'utf8') } : {}),
      });
      expect(connector.validateSettings(lapseTarget)).toEqual([]);
      await connector.checkTarget(lapseTarget, AbortSignal.timeout(60_000));

      const probeTarget = target('live-gcp-probe', { credentials: readFileSync(env.LAPSE_LIVE_GCP_PROBE_KEY!, 'utf8') });
      const probe = new ResourceManager(
        'live-gcp-probe',
        () => new GcpCredentials().for(probeTarget, parseTarget(probeTarget)),
        parseTarget(probeTarget).rootUrl,
        30_000,
      );
      const probeHolds = async () => (await probe.testPermissions(resource, [permission], AbortSignal.timeout(60_000))).includes(permission);
      expect(await probeHolds(), `the probe must not hold ${permission} on ${resource} before the test`).toBe(false);

      const grant = {
        grantId: newId('grant'),
        principalId: 'probe',
        target: lapseTarget,
        entitlement: lapseTarget.entitlements.get('probe')!,
        durationMs: 30 * 60_000,
        notAfter: new Date(Date.now() + 30 * 60_000),
        parameters: {},
      };
      const { handle } = await connector.provision(grant, AbortSignal.timeout(60_000));
      try {
        expect(await until(probeHolds, true), `the probe never got ${permission} within the bound`).toBe(true);
        expect((await connector.listAccess(lapseTarget, AbortSignal.timeout(60_000))).some((a) => a.grantId === grant.grantId)).toBe(true);
      } finally {
        for (let i = 0; i < 30 && (await connector.revoke(grant, handle, AbortSignal.timeout(60_000)))?.propagationPending; i++) await sleep(10_000);
      }
      expect(await until(probeHolds, false), `the probe still held ${permission} after the bound`).toBe(false);
    },
    3 * PROPAGATION_BOUND_MS,
  );
});

/** Polls until `probe` answers `wanted` or the propagation bound passes; returns the last answer. */
async function until(probe: () => Promise<boolean>, wanted: boolean): Promise<boolean> {
  const deadline = Date.now() + PROPAGATION_BOUND_MS;
  let last = await probe();
  while (last !== wanted && Date.now() < deadline) {
    await sleep(15_000);
    last = await probe();
  }
  return last;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
