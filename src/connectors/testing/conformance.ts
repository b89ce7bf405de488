import { describe, expect, it } from 'vitest';
import type { Connector, GrantSpec, ProvisionResult } from '../types.js';

/**
 * The behaviour every connector must show against its real system. A connector's own test calls
 * this with a live target; it then adds the tests only that system needs (sessions, clients…).
 */
export interface ConformanceSubject {
  readonly name: string;
  readonly connector: () => Connector;
  /** A grant spec for a fresh grant id each call, on a target that is really running. */
  readonly grant: (overrides?: Partial<GrantSpec>) => GrantSpec;
  /**
   * Asks the real system (with its own client where possible) whether the grant's access works;
   * `provisioned` is what provision returned (credentials for an ephemeral account), or the last
   * result for the grant when asking after a revoke.
   */
  readonly hasAccess: (grant: GrantSpec, provisioned: ProvisionResult) => Promise<boolean>;
  /** Gives access at the target behind Lapse's back (as a DBA would); returns the principal id listAccess will report. */
  readonly createUnmanaged?: (grant: GrantSpec) => Promise<string>;
}

const LONG = 30_000;

function signal(ms = LONG): AbortSignal {
  return AbortSignal.timeout(ms);
}

export function connectorConformance(subject: ConformanceSubject): void {
  describe(`connector conformance: ${subject.name}`, () => {
    it('accepts its own target settings', () => {
      const grant = subject.grant();
      expect(subject.connector().validateSettings(grant.target)).toEqual([]);
    });

    it('reaches the target with the privileges it needs', async () => {
      await subject.connector().checkTarget(subject.grant().target, signal());
    });

    it('provisions access that works and that list reports', async () => {
      const connector = subject.connector();
      const grant = subject.grant();
      const provisioned = await connector.provision(grant, signal());
      const { handle } = provisioned;
      try {
        expect(await subject.hasAccess(grant, provisioned)).toBe(true);
        const listed = await connector.listAccess(grant.target, signal());
        expect(listed).toContainEqual(expect.objectContaining({ principalId: grant.principalId, entitlement: grant.entitlement.name }));
      } finally {
        await connector.revoke(grant, handle, signal());
      }
    });

    it('provisions idempotently: twice is the same as once', async () => {
      const connector = subject.connector();
      const grant = subject.grant();
      await connector.provision(grant, signal());
      const provisioned = await connector.provision(grant, signal());
      expect(await subject.hasAccess(grant, provisioned)).toBe(true);
      const listed = await connector.listAccess(grant.target, signal());
      const mine = listed.filter((a) => a.principalId === grant.principalId && a.entitlement === grant.entitlement.name);
      expect(mine.length).toBeGreaterThanOrEqual(1);
      await connector.revoke(grant, provisioned.handle, signal());
      expect(await subject.hasAccess(grant, provisioned)).toBe(false);
    });

    it('revokes so the access no longer works, and revoking again is harmless', async () => {
      const connector = subject.connector();
      const grant = subject.grant();
      const provisioned = await connector.provision(grant, signal());
      await connector.revoke(grant, provisioned.handle, signal());
      expect(await subject.hasAccess(grant, provisioned)).toBe(false);
      await connector.revoke(grant, provisioned.handle, signal());
      const listed = await connector.listAccess(grant.target, signal());
      expect(listed.some((a) => a.grantId === grant.grantId)).toBe(false);
    });

    it('revokes a grant that was never provisioned (a crash before provision) without error', async () => {
      await subject.connector().revoke(subject.grant(), null, signal());
    });

    it('removes access that list reports, for reconciliation, and removing again is harmless', async () => {
      const connector = subject.connector();
      const grant = subject.grant();
      const provisioned = await connector.provision(grant, signal());
      const entry = (await connector.listAccess(grant.target, signal())).find(
        (a) => a.grantId === grant.grantId || (a.principalId === grant.principalId && a.entitlement === grant.entitlement.name),
      );
      expect(entry).toBeDefined();
      await connector.removeAccess(grant.target, entry!, signal());
      expect(await subject.hasAccess(grant, provisioned)).toBe(false);
      await connector.removeAccess(grant.target, entry!, signal());
      await connector.revoke(grant, provisioned.handle, signal());
    });

    it('lists access created behind its back as not belonging to any grant', async ({ skip }) => {
      if (!subject.createUnmanaged) return skip('this target has no way to create access outside Lapse');
      const connector = subject.connector();
      const grant = subject.grant();
      const principalId = await subject.createUnmanaged(grant);
      const listed = await connector.listAccess(grant.target, signal());
      const entry = listed.find((a) => a.principalId === principalId && a.entitlement === grant.entitlement.name);
      expect(entry).toMatchObject({ grantId: null });
      await connector.removeAccess(grant.target, entry!, signal());
      const after = await connector.listAccess(grant.target, signal());
      expect(after.some((a) => a.principalId === principalId && a.entitlement === grant.entitlement.name)).toBe(false);
    });

    it('gives up when its deadline passes', async () => {
      const aborted = AbortSignal.abort(new Error('deadline'));
      await expect(subject.connector().provision(subject.grant(), aborted)).rejects.toThrow();
    });
  });
}
