import { createHash } from 'node:crypto';
import { isId } from '../../domain/ids.js';
import { LapseError } from '../../domain/errors.js';

/**
 * How Lapse finds its own assignments again without any state of its own: the role assignment or
 * PIM request is *named* by a UUID derived from the grant id (RFC 4122 version 5, SHA-1 of a fixed
 * namespace and the grant id), so a repeated provision addresses the same resource; and the grant id
 * is *written* into the assignment's description or the request's justification and ticket
 * number, where reconciliation reads it back.
 */

/** Lapse's namespace for version-5 UUIDs (a fixed random UUID; changing it renames everything). */
const NAMESPACE = Buffer.from('6c1d0a8e5b7f4e2a9c3d8b1f0e6a4d27', 'hex');
const GRANT_IN_TEXT = /\bgrt_[0-9a-z]{26}\b/;
export const TICKET_SYSTEM = 'Lapse';

/** RFC 4122 §4.3: a name-based UUID (version 5, SHA-1). */
export function uuidV5(name: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function checkedGrant(grantId: string): string {
  // NB. Grant ids come from Lapse itself; refusing anything else keeps a bad id out of names.
  if (!isId('grant', grantId)) throw new LapseError('validation_failed', `"${grantId.slice(0, 40)}" is not a grant id`, { where: 'grantId' });
  return grantId;
}

/** The name of the grant's role assignment (mode: assignment) or its PIM AdminAssign request. */
export function assignmentName(grantId: string): string {
  return uuidV5(checkedGrant(grantId));
}

/** The name of the PIM request moving the grant's end to `end`: one per (grant, end), so a retry is the same request. */
export function updateRequestName(grantId: string, end: Date): string {
  return uuidV5(`${checkedGrant(grantId)}:update:${end.toISOString()}`);
}

/** The description / justification Lapse writes: the grant id first, where reconciliation finds it. */
export function grantNote(grantId: string, target: string, entitlement: string, principalId: string): string {
  const clean = (s: string, max: number) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
  return `Lapse grant ${checkedGrant(grantId)}: ${clean(target, 100)}/${clean(entitlement, 100)} for ${clean(principalId, 200)}`;
}

/** The grant id in a description, justification or ticket number Lapse wrote, or null. */
export function grantIdIn(text: unknown): string | null {
  if (typeof text !== 'string') return null;
  const found = GRANT_IN_TEXT.exec(text)?.[0];
  return found && isId('grant', found) ? found : null;
}
