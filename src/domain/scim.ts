import { LapseError } from './errors.js';
import { PERSON_NAME_PATTERN } from './principal.js';
import { controlCharacterProblem } from './text.js';

/**
 * SCIM 2.0 (RFC 7643 resources, RFC 7644 protocol), the part Lapse serves: the filter subset IdPs
 * send, PATCH operations on users and groups, and full resources turned into the fields Lapse
 * keeps. Pure: the engine applies the result (src/engine/directory.ts), the API speaks the wire
 * format (src/api/routes/scim.ts).
 *
 * NB. Leniency where Okta and Entra ID differ from the RFC, on purpose: operation names in any
 * case (`Replace`), booleans as strings (`"False"`), and attributes Lapse does not keep (title,
 * phone numbers, the enterprise extension) accepted and ignored rather than failing a whole push.
 */

export const SCIM_USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCIM_GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCIM_PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** RFC 7644 §3.12 error types Lapse reports. */
export type ScimType = 'invalidFilter' | 'invalidPath' | 'invalidValue' | 'invalidSyntax' | 'uniqueness' | 'noTarget' | 'mutability' | 'tooMany';

/** A refusal with its SCIM error type (details.scimType), the HTTP status from the code. */
export function scimProblem(scimType: ScimType, message: string, where: string, hint?: string): LapseError {
  return new LapseError(scimType === 'uniqueness' ? 'conflict' : 'validation_failed', message, { where, scimType, ...(hint ? { hint } : {}) });
}

export const SCIM_LIMITS = {
  filterLength: 1000,
  operations: 100,
  membersPerRequest: 10_000,
  text: 256,
  externalId: 2048,
  pageSize: 200,
} as const;

export interface ScimUserFields {
  /** The Lapse user name: the SCIM userName lower-cased. */
  readonly userName: string;
  readonly externalId: string | null;
  readonly displayName: string | null;
  readonly email: string | null;
  readonly active: boolean;
}

export interface ScimGroupFields {
  readonly displayName: string;
  readonly externalId: string | null;
  /** Member user ids. */
  readonly members: readonly string[];
}

// Values

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown, where: string, max: number = SCIM_LIMITS.text): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw scimProblem('invalidValue', `${where} must be a string of 1 to ${max} characters`, where);
  }
  const problem = controlCharacterProblem(value);
  if (problem) throw scimProblem('invalidValue', `${where} ${problem}`, where);
  return value;
}

function optionalText(value: unknown, where: string, max: number = SCIM_LIMITS.text): string | null {
  return value === undefined || value === null || value === '' ? null : text(value, where, max);
}

/** A SCIM boolean; Entra ID sends "True"/"False" as strings. */
function bool(value: unknown, where: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw scimProblem('invalidValue', `${where} must be true or false`, where);
}

/** The SCIM userName as a Lapse user name (case-insensitive in SCIM, so lower-cased). */
export function scimUserName(value: unknown): string {
  const name = text(value, 'userName', 128).trim().toLowerCase();
  if (!PERSON_NAME_PATTERN.test(name)) {
    throw scimProblem(
      'invalidValue',
      `userName "${name.slice(0, 60)}" is not usable in Lapse`,
      'userName',
      'Use simple names: letters, digits, "_", ".", "@" and "-" (an email address works).',
    );
  }
  return name;
}

function primaryEmail(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value) || value.length > 50) throw scimProblem('invalidValue', 'emails must be a list (at most 50)', 'emails');
  const entries = value.filter(isObject);
  const chosen = entries.find((e) => e.primary === true || e.primary === 'true' || e.primary === 'True') ?? entries[0];
  return chosen ? optionalText(chosen.value, 'emails.value', 320) : null;
}

function displayNameOf(resource: Record<string, unknown>): string | null {
  if (resource.displayName !== undefined) return optionalText(resource.displayName, 'displayName');
  if (isObject(resource.name)) {
    if (resource.name.formatted !== undefined) return optionalText(resource.name.formatted, 'name.formatted');
    const parts = [resource.name.givenName, resource.name.familyName].filter((p): p is string => typeof p === 'string' && p.length > 0);
    if (parts.length > 0) return optionalText(parts.join(' '), 'name');
  }
  return null;
}

function memberIds(value: unknown, where: string): string[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length > SCIM_LIMITS.membersPerRequest) throw scimProblem('tooMany', `at most ${SCIM_LIMITS.membersPerRequest} members at once`, where);
  return list.map((m, i) => {
    if (!isObject(m)) throw scimProblem('invalidValue', `${where}[${i}] must be an object with "value" (a user id)`, where);
    return text(m.value, `${where}[${i}].value`, 64);
  });
}

// Full resources (POST, PUT)

export function parseUserResource(body: unknown): ScimUserFields {
  if (!isObject(body)) throw scimProblem('invalidSyntax', 'the body must be a SCIM User object', 'body');
  return {
    userName: scimUserName(body.userName),
    externalId: optionalText(body.externalId, 'externalId', SCIM_LIMITS.externalId),
    displayName: displayNameOf(body),
    email: primaryEmail(body.emails),
    active: body.active === undefined ? true : bool(body.active, 'active'),
  };
}

export function parseGroupResource(body: unknown): ScimGroupFields {
  if (!isObject(body)) throw scimProblem('invalidSyntax', 'the body must be a SCIM Group object', 'body');
  return {
    displayName: text(body.displayName, 'displayName'),
    externalId: optionalText(body.externalId, 'externalId', SCIM_LIMITS.externalId),
    members: [...new Set(memberIds(body.members, 'members'))],
  };
}

// Filters (RFC 7644 §3.4.2.2): the subset IdPs use

export interface FilterClause {
  /** The attribute as Lapse names it (one of the allowed ones). */
  readonly attribute: string;
  readonly value: string;
}

const CLAUSE = /^\s*([A-Za-z][\w.:-]*)\s+eq\s+("(?:[^"\\]|\\.)*")\s*/i;
const MEMBER_CLAUSE = /^\s*members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]\s*/i;

/**
 * `attr eq "value"` clauses joined by `and` (and `members[value eq "…"]` where `members.value` is
 * allowed). `allowed` maps lower-cased attribute names to Lapse's. Anything else is `invalidFilter`.
 */
export function parseScimFilter(filter: string, allowed: Readonly<Record<string, string>>): FilterClause[] {
  if (filter.length > SCIM_LIMITS.filterLength) throw scimProblem('invalidFilter', `a filter is at most ${SCIM_LIMITS.filterLength} characters`, 'filter');
  const supported = `Lapse filters with "eq" on ${Object.values(allowed).join(', ')}, joined by "and", e.g. userName eq "dana@example.com".`;
  const clauses: FilterClause[] = [];
  let rest = filter;
  for (;;) {
    const member = MEMBER_CLAUSE.exec(rest);
    const match = member ? null : CLAUSE.exec(rest);
    if (!member && !match) throw scimProblem('invalidFilter', `cannot read the filter at "${rest.trim().slice(0, 40)}"`, 'filter', supported);
    const attributeKey = member ? 'members.value' : match![1]!.toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/, '');
    const attribute = allowed[attributeKey];
    if (!attribute) throw scimProblem('invalidFilter', `filtering on ${member ? 'members' : match![1]} is not supported`, 'filter', supported);
    let value: unknown;
    try {
      value = JSON.parse((member ? member[1] : match![2])!);
    } catch {
      throw scimProblem('invalidFilter', 'a filter value is not a valid string', 'filter');
    }
    clauses.push({ attribute, value: text(value, 'filter value', SCIM_LIMITS.externalId) });
    rest = rest.slice((member ?? match)![0].length);
    if (rest.trim() === '') return clauses;
    const and = /^and\s+/i.exec(rest);
    if (!and) throw scimProblem('invalidFilter', `expected "and" at "${rest.trim().slice(0, 40)}"`, 'filter', supported);
    rest = rest.slice(and[0].length);
  }
}

// PATCH (RFC 7644 §3.5.2)

export interface PatchOperation {
  readonly op: 'add' | 'replace' | 'remove';
  readonly path: string | undefined;
  readonly value: unknown;
}

export function parsePatch(body: unknown): PatchOperation[] {
  if (!isObject(body)) throw scimProblem('invalidSyntax', 'the body must be a PatchOp object', 'body');
  if (body.schemas !== undefined && !(Array.isArray(body.schemas) && body.schemas.includes(SCIM_PATCH_SCHEMA))) {
    throw scimProblem('invalidSyntax', `schemas must contain ${SCIM_PATCH_SCHEMA}`, 'schemas');
  }
  const operations = body.Operations ?? body.operations;
  if (!Array.isArray(operations) || operations.length === 0) throw scimProblem('invalidSyntax', 'Operations must be a non-empty list', 'Operations');
  if (operations.length > SCIM_LIMITS.operations) throw scimProblem('tooMany', `at most ${SCIM_LIMITS.operations} operations in one PATCH`, 'Operations');
  return operations.map((raw, i) => {
    const where = `Operations[${i}]`;
    if (!isObject(raw)) throw scimProblem('invalidSyntax', `${where} must be an object`, where);
    const op = typeof raw.op === 'string' ? raw.op.toLowerCase() : '';
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw scimProblem('invalidSyntax', `${where}.op must be add, replace or remove`, `${where}.op`);
    const path = raw.path === undefined || raw.path === null || raw.path === '' ? undefined : text(raw.path, `${where}.path`, 500);
    if (op !== 'remove' && raw.value === undefined) throw scimProblem('invalidSyntax', `${where} needs a value`, `${where}.value`);
    if (op === 'remove' && path === undefined) throw scimProblem('noTarget', `${where}: remove needs a path`, `${where}.path`);
    return { op, path, value: raw.value };
  });
}

const USER_PREFIX = `${SCIM_USER_SCHEMA.toLowerCase()}:`;

/** The user after the operations; attributes Lapse does not keep are ignored. */
export function applyUserPatch(current: ScimUserFields, operations: readonly PatchOperation[]): ScimUserFields {
  let next = { ...current };
  const set = (key: string, value: unknown, op: PatchOperation['op'], where: string) => {
    const attribute = key.toLowerCase().startsWith(USER_PREFIX) ? key.slice(USER_PREFIX.length).toLowerCase() : key.toLowerCase();
    const removing = op === 'remove';
    switch (attribute) {
      case 'active':
        if (removing) throw scimProblem('mutability', 'active cannot be removed; set it to false', where);
        next = { ...next, active: bool(value, 'active') };
        return;
      case 'username':
        if (removing) throw scimProblem('mutability', 'userName is required', where);
        next = { ...next, userName: scimUserName(value) };
        return;
      case 'displayname':
        next = { ...next, displayName: removing ? null : optionalText(value, 'displayName') };
        return;
      case 'name.formatted':
        if (next.displayName === null || removing) next = { ...next, displayName: removing ? null : optionalText(value, 'name.formatted') };
        return;
      case 'externalid':
        next = { ...next, externalId: removing ? null : optionalText(value, 'externalId', SCIM_LIMITS.externalId) };
        return;
      case 'emails':
        next = { ...next, email: removing ? null : primaryEmail(Array.isArray(value) ? value : [value]) };
        return;
      default:
        if (/^emails\[.*\]\.value$/.test(attribute)) {
          next = { ...next, email: removing ? null : optionalText(value, 'emails.value', 320) };
        }
      // Anything else (name.givenName, title, the enterprise extension…) Lapse does not keep.
    }
  };
  operations.forEach((operation, i) => {
    const where = `Operations[${i}]`;
    if (operation.path !== undefined) return set(operation.path, operation.value, operation.op, `${where}.path`);
    if (!isObject(operation.value)) throw scimProblem('invalidValue', `${where}.value must be an object of attributes when there is no path`, `${where}.value`);
    for (const [key, value] of Object.entries(operation.value)) {
      if (key === 'name' && isObject(value) && value.formatted !== undefined) set('name.formatted', value.formatted, operation.op, `${where}.value`);
      else set(key, value, operation.op, `${where}.value.${key}`);
    }
  });
  return next;
}

const MEMBER_PATH = /^members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]$/i;

/** The group after the operations. */
export function applyGroupPatch(current: ScimGroupFields, operations: readonly PatchOperation[]): ScimGroupFields {
  let displayName = current.displayName;
  let externalId = current.externalId;
  const members = new Set(current.members);
  const changeMembers = (op: PatchOperation['op'], value: unknown, where: string) => {
    if (op === 'replace') members.clear();
    if (op === 'remove' && value === undefined) return members.clear();
    for (const id of memberIds(value, where)) {
      if (op === 'remove') members.delete(id);
      else members.add(id);
    }
    if (members.size > SCIM_LIMITS.membersPerRequest * 10) throw scimProblem('tooMany', 'a group has at most 100000 members', where);
  };
  operations.forEach((operation, i) => {
    const where = `Operations[${i}]`;
    const path = operation.path?.replace(/^urn:ietf:params:scim:schemas:core:2\.0:Group:/i, '');
    if (path === undefined) {
      if (!isObject(operation.value))
        throw scimProblem('invalidValue', `${where}.value must be an object of attributes when there is no path`, `${where}.value`);
      for (const [key, value] of Object.entries(operation.value)) {
        const attribute = key.toLowerCase();
        if (attribute === 'displayname') displayName = text(value, 'displayName');
        else if (attribute === 'externalid') externalId = optionalText(value, 'externalId', SCIM_LIMITS.externalId);
        else if (attribute === 'members') changeMembers(operation.op, value, `${where}.value.members`);
      }
      return;
    }
    const member = MEMBER_PATH.exec(path);
    if (member) {
      if (operation.op !== 'remove') throw scimProblem('invalidPath', `${where}: only remove takes a members[value eq "…"] path`, `${where}.path`);
      members.delete(text(JSON.parse(member[1]!), `${where}.path`, 64));
      return;
    }
    switch (path.toLowerCase()) {
      case 'members':
        return changeMembers(operation.op, operation.value, `${where}.value`);
      case 'displayname':
        if (operation.op === 'remove') throw scimProblem('mutability', 'displayName is required', `${where}.path`);
        displayName = text(operation.value, 'displayName');
        return;
      case 'externalid':
        externalId = operation.op === 'remove' ? null : optionalText(operation.value, 'externalId', SCIM_LIMITS.externalId);
        return;
      default:
        throw scimProblem('invalidPath', `${where}: Lapse groups have displayName, externalId and members, not ${path.slice(0, 60)}`, `${where}.path`);
    }
  });
  return { displayName, externalId, members: [...members] };
}
