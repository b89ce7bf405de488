/**
 * The role's `lapse-revocations` inline policy as data: what Lapse writes there, read back from
 * the document IAM returns, changed, and written again (IAM has no partial update). Pure: no I/O,
 * and every "now" is passed in.
 *
 * Three kinds of statement, each a Deny of everything that carries its own expiry as a
 * `DateLessThan aws:CurrentTime` condition, so a statement nobody prunes is harmless:
 *
 * - a **backstop** per live grant (`LapseB<grant>`): denies the grant's sessions (session tag
 *   `lapse-grant` and source identity) from the grant's end on. AWS itself then ends sessions that
 *   outlive the grant (AWS issues no session shorter than 15 minutes) even if Lapse is down at
 *   expiry; it is also the record reconciliation lists, since STS sessions cannot be listed.
 * - **revoked** grants (`LapseR<until>`): denies the grants' sessions at once, grouped by expiry
 *   (rounded up to a quarter hour) so one grant costs about 33 characters.
 * - a **cutoff** (`LapseCutoff`): denies every session of the role issued before a moment
 *   (`aws:TokenIssueTime`). Only when the revoked grants no longer fit in IAM's 10,240-character
 *   budget: it replaces them all, and also ends the sessions of live grants issued before it.
 *
 * Statements Lapse did not write are kept as they are.
 */

export const REVOCATION_POLICY = 'lapse-revocations';
/** IAM's limit on all inline policies of a role together, counted without whitespace. */
export const INLINE_POLICY_BUDGET = 10_240;
export const GRANT_TAG = 'lapse-grant';
/** Sessions chained from a grant's session (role chaining) live at most an hour more. */
export const CHAINED_SESSION_MS = 3_600_000;
const BUCKET_MS = 15 * 60_000;

export interface Backstop {
  readonly grantId: string;
  /** The requester, the sessions' source identity. */
  readonly principal: string;
  /** The grant's end: from then on the grant's sessions are denied. */
  readonly cut: number;
  /** When the last of the grant's sessions (chained ones included) has expired. */
  readonly until: number;
}

export interface Cutoff {
  readonly issuedBefore: number;
  readonly until: number;
}

export interface RevocationDocument {
  readonly backstops: Map<string, Backstop>;
  /** Revoked grant id -> when the last of its sessions has expired. */
  readonly revoked: Map<string, number>;
  cutoff: Cutoff | undefined;
  /** Statements someone else wrote into the policy; kept verbatim. */
  readonly foreign: unknown[];
}

type Statement = Record<string, unknown> & { Condition?: Record<string, Record<string, unknown>> };

const TAG_KEY = `aws:PrincipalTag/${GRANT_TAG}`;

export function emptyDocument(): RevocationDocument {
  return { backstops: new Map(), revoked: new Map(), cutoff: undefined, foreign: [] };
}

/** Parses the policy IAM returned (URL-decoded JSON), or an empty one when the role has none. */
export function parseDocument(text: string | undefined): RevocationDocument {
  const doc = emptyDocument();
  if (text === undefined) return doc;
  const parsed = JSON.parse(text) as { Statement?: unknown };
  const statements = Array.isArray(parsed.Statement) ? parsed.Statement : parsed.Statement === undefined ? [] : [parsed.Statement];
  for (const statement of statements as Statement[]) {
    if (!readStatement(doc, statement)) doc.foreign.push(statement);
  }
  return doc;
}

function readStatement(doc: RevocationDocument, s: Statement): boolean {
  if (typeof s.Sid !== 'string' || !s.Sid.startsWith('Lapse') || s.Effect !== 'Deny' || s.Action !== '*' || s.Resource !== '*') return false;
  const until = time(s.Condition?.DateLessThan?.['aws:CurrentTime']);
  if (until === undefined) return false;
  if (s.Sid === 'LapseCutoff') {
    const issuedBefore = time(s.Condition?.DateLessThan?.['aws:TokenIssueTime']);
    if (issuedBefore === undefined) return false;
    doc.cutoff = mergeCutoff(doc.cutoff, { issuedBefore, until });
    return true;
  }
  const grants = strings(s.Condition?.StringEquals?.[TAG_KEY]);
  if (grants.length === 0) return false;
  if (s.Sid.startsWith('LapseB')) {
    const cut = time(s.Condition?.DateGreaterThan?.['aws:CurrentTime']);
    const principal = strings(s.Condition?.StringEquals?.['aws:SourceIdentity'])[0];
    if (cut === undefined || principal === undefined || grants.length !== 1) return false;
    doc.backstops.set(grants[0]!, { grantId: grants[0]!, principal, cut, until });
    return true;
  }
  if (!s.Sid.startsWith('LapseR')) return false;
  for (const grantId of grants) doc.revoked.set(grantId, Math.max(until, doc.revoked.get(grantId) ?? 0));
  return true;
}

function time(value: unknown): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string') return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

const iso = (ms: number) => new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const sidTime = (ms: number) => iso(ms).replace(/[-:]/g, '');

/** The policy document to write, packed; undefined when nothing is left (delete the policy). */
export function renderDocument(doc: RevocationDocument): string | undefined {
  const statements: unknown[] = [...doc.foreign];
  const deny = (Sid: string, Condition: Record<string, Record<string, unknown>>) => ({ Sid, Effect: 'Deny', Action: '*', Resource: '*', Condition });
  for (const b of [...doc.backstops.values()].sort((x, y) => x.cut - y.cut || x.grantId.localeCompare(y.grantId))) {
    statements.push(
      deny(`LapseB${b.grantId.replace(/[^A-Za-z0-9]/g, '')}`, {
        StringEquals: { [TAG_KEY]: b.grantId, 'aws:SourceIdentity': b.principal },
        DateGreaterThan: { 'aws:CurrentTime': iso(b.cut) },
        DateLessThan: { 'aws:CurrentTime': iso(b.until) },
      }),
    );
  }
  const buckets = new Map<number, string[]>();
  for (const [grantId, until] of doc.revoked) {
    const bucket = Math.ceil(until / BUCKET_MS) * BUCKET_MS;
    buckets.set(bucket, [...(buckets.get(bucket) ?? []), grantId]);
  }
  for (const [bucket, grants] of [...buckets].sort((a, b) => a[0] - b[0])) {
    statements.push(deny(`LapseR${sidTime(bucket)}`, { StringEquals: { [TAG_KEY]: grants.sort() }, DateLessThan: { 'aws:CurrentTime': iso(bucket) } }));
  }
  if (doc.cutoff) {
    statements.push(deny('LapseCutoff', { DateLessThan: { 'aws:TokenIssueTime': iso(doc.cutoff.issuedBefore), 'aws:CurrentTime': iso(doc.cutoff.until) } }));
  }
  return statements.length === 0 ? undefined : JSON.stringify({ Version: '2012-10-17', Statement: statements });
}

/** Drops statements whose sessions have all expired. */
export function prune(doc: RevocationDocument, now: number): void {
  for (const [id, b] of doc.backstops) if (b.until <= now) doc.backstops.delete(id);
  for (const [id, until] of doc.revoked) if (Math.ceil(until / BUCKET_MS) * BUCKET_MS <= now) doc.revoked.delete(id);
  if (doc.cutoff && doc.cutoff.until <= now) doc.cutoff = undefined;
}

/** Sets (or moves, on extend and activation) a live grant's backstop; its `until` never shrinks. */
export function setBackstop(doc: RevocationDocument, backstop: Backstop): void {
  const previous = doc.backstops.get(backstop.grantId);
  doc.backstops.set(backstop.grantId, previous ? { ...backstop, until: Math.max(previous.until, backstop.until) } : backstop);
}

/**
 * Denies the grant's sessions from now on: its backstop (if any) becomes a revoked entry lasting
 * as long as its sessions can; without one, `fallbackUntil` is the bound. Returns the `until` the
 * denial must reach, or undefined when every session has already expired (nothing to deny).
 */
export function revokeGrant(doc: RevocationDocument, grantId: string, fallbackUntil: number, now: number): number | undefined {
  const backstop = doc.backstops.get(grantId);
  const until = Math.max(backstop?.until ?? fallbackUntil, doc.revoked.get(grantId) ?? 0);
  doc.backstops.delete(grantId);
  if (until <= now) return undefined;
  doc.revoked.set(grantId, until);
  return until;
}

/** Whether the document denies every session of the grant issued before `since` until `until`. */
export function denies(doc: RevocationDocument, grantId: string, since: number, until: number, now: number): boolean {
  if (until <= now) return true;
  if ((doc.revoked.get(grantId) ?? 0) >= until) return true;
  const backstop = doc.backstops.get(grantId);
  if (backstop && backstop.cut <= now && backstop.until >= until) return true;
  return doc.cutoff !== undefined && doc.cutoff.issuedBefore >= since && doc.cutoff.until >= until;
}

/** Live grants: backstops that have not cut in yet. */
export function liveBackstops(doc: RevocationDocument, now: number): Backstop[] {
  return [...doc.backstops.values()].filter((b) => b.cut > now);
}

/**
 * Adds what `from` (the last document this process wrote) holds to `into` (what IAM just
 * returned), so a stale read cannot make the next write drop a recent change. Safe because
 * revocations only grow until they expire, and prune removes them then.
 */
export function merge(into: RevocationDocument, from: RevocationDocument): void {
  for (const [grantId, until] of from.revoked) into.revoked.set(grantId, Math.max(until, into.revoked.get(grantId) ?? 0));
  for (const grantId of into.revoked.keys()) into.backstops.delete(grantId);
  for (const backstop of from.backstops.values()) if (!into.revoked.has(backstop.grantId)) into.backstops.set(backstop.grantId, backstop);
  if (from.cutoff) into.cutoff = mergeCutoff(into.cutoff, from.cutoff);
}

function mergeCutoff(a: Cutoff | undefined, b: Cutoff): Cutoff {
  return a ? { issuedBefore: Math.max(a.issuedBefore, b.issuedBefore), until: Math.max(a.until, b.until) } : b;
}

export interface Fitting {
  /** The packed document, or undefined when it is empty. */
  readonly text: string | undefined;
  /** The revoked grants were folded into a cutoff at `now` to make room. */
  readonly cutoff: boolean;
  /** Backstops of live grants dropped to make room for revocations (their grants lose the record and the backstop). */
  readonly droppedBackstops: string[];
}

/**
 * Makes the document fit `budget` characters. Revocations come first: (1) expired statements go;
 * (2) the revoked grants become one cutoff at `now` (every session issued before now is denied,
 * which covers them all, since no session is issued for a grant after its revoke); (3) backstops
 * are dropped, newest first, until the cutoff fits. Returns undefined for `text` only when empty.
 */
export function fit(doc: RevocationDocument, budget: number, now: number): Fitting {
  prune(doc, now);
  let text = renderDocument(doc);
  let cutoff = false;
  const droppedBackstops: string[] = [];
  if (text !== undefined && text.length > budget && doc.revoked.size > 0) {
    const until = Math.max(...doc.revoked.values());
    doc.revoked.clear();
    doc.cutoff = mergeCutoff(doc.cutoff, { issuedBefore: now, until });
    cutoff = true;
    text = renderDocument(doc);
  }
  const newestFirst = [...doc.backstops.values()].sort((a, b) => b.cut - a.cut);
  while (text !== undefined && text.length > budget && (cutoff || doc.cutoff !== undefined) && newestFirst.length > 0) {
    const dropped = newestFirst.shift()!;
    doc.backstops.delete(dropped.grantId);
    droppedBackstops.push(dropped.grantId);
    text = renderDocument(doc);
  }
  return { text, cutoff, droppedBackstops };
}
