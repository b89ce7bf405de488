import type { V1RoleBinding } from '@kubernetes/client-node';
import { LapseError } from '../../domain/errors.js';
import type { GrantSpec } from '../types.js';
import { createBinding, deleteBinding, readBinding, replaceBinding } from './binding-api.js';
import { describeBinding, isGrantsBinding, sameSubject, type BindingRef } from './bindings.js';
import type { KubeApi } from './kube-api.js';

/**
 * Makes the grant's binding exist exactly as `desired`, whatever an earlier attempt left: create
 * it; if it exists, keep it when it is the same, update its subjects and annotations when they
 * differ (optimistic concurrency: a 409 Conflict re-reads and tries again), and recreate it when
 * its roleRef differs (roleRef cannot change in place). A binding of that name that is not the
 * grant's is never touched.
 */
export async function ensureGrantBinding(api: KubeApi, grant: GrantSpec, desired: V1RoleBinding, signal: AbortSignal): Promise<void> {
  const ref: BindingRef = { namespace: desired.metadata!.namespace, name: desired.metadata!.name! };
  for (let attempt = 0; attempt < 6; attempt++) {
    if (await createBinding(api, desired, signal)) return;
    const existing = await readBinding(api, ref, signal);
    if (!existing) continue;
    if (!isGrantsBinding(existing, grant))
      throw new LapseError('conflict', `kubernetes target ${grant.target.name}: ${describeBinding(ref)} exists but is not grant ${grant.grantId}'s`, {
        where: `targets.${grant.target.name}`,
        hint: 'Lapse names bindings after grant ids and will not take over one it did not make; delete or rename that binding',
      });
    if (existing.metadata?.deletionTimestamp) continue;
    const sameRole = existing.roleRef.kind === desired.roleRef.kind && existing.roleRef.name === desired.roleRef.name;
    if (!sameRole) {
      await deleteBinding(api, ref, signal, existing.metadata?.uid);
      continue;
    }
    const subjects = existing.subjects ?? [];
    const sameSubjects = subjects.length === desired.subjects!.length && subjects.every((s, i) => sameSubject(s, desired.subjects![i]!));
    const annotations = { ...existing.metadata?.annotations, ...desired.metadata!.annotations };
    const sameAnnotations = Object.entries(desired.metadata!.annotations ?? {}).every(([k, v]) => existing.metadata?.annotations?.[k] === v);
    if (sameSubjects && sameAnnotations) return;
    const updated = await replaceBinding(api, { ...existing, metadata: { ...existing.metadata, annotations }, subjects: desired.subjects! }, signal);
    if (updated) return;
  }
  throw new LapseError('connector_failed', `kubernetes target ${grant.target.name}: ${describeBinding(ref)} kept changing while Lapse wrote it`, {
    where: `targets.${grant.target.name}`,
    hint: 'something else is editing the binding (a GitOps controller?); Lapse retries the call',
  });
}

/**
 * Deletes the grant's binding and reads it back: null when it is gone, or why it is not yet (an
 * object with finalizers stays, marked for deletion, until they are removed, and RBAC still
 * honours it meanwhile).
 */
export async function removeGrantBinding(api: KubeApi, grant: GrantSpec, ref: BindingRef, signal: AbortSignal): Promise<string | null> {
  const existing = await readBinding(api, ref, signal);
  if (!existing) return null;
  if (!isGrantsBinding(existing, grant))
    throw new LapseError(
      'conflict',
      `kubernetes target ${grant.target.name}: ${describeBinding(ref)} is not grant ${grant.grantId}'s; Lapse will not delete it`,
      {
        where: `targets.${grant.target.name}`,
        hint: 'someone replaced the grant binding with their own object; remove it by hand if it should not exist',
      },
    );
  if (!existing.metadata?.deletionTimestamp) await deleteBinding(api, ref, signal, existing.metadata?.uid);
  const after = await readBinding(api, ref, signal);
  if (!after || !isGrantsBinding(after, grant)) return null;
  if (after.metadata?.uid !== existing.metadata?.uid) return `${describeBinding(ref)} was created again while Lapse deleted it`;
  const finalizers = after.metadata?.finalizers ?? [];
  return `${describeBinding(ref)} is marked for deletion but still exists${finalizers.length > 0 ? ` (finalizers: ${finalizers.join(', ').slice(0, 200)})` : ''}; RBAC honours it until it is gone`;
}
