/**
 * Small checks the connectors' `validateSettings` share. Each returns a problem string in the
 * "<path>: what is wrong, how to fix it" form, or nothing when the value is fine.
 */

export function checkHost(value: unknown, where: string, required = true): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 253 || /[\s\0/]/.test(value)) {
    return `${where}: must be a host name or IP address (up to 253 characters)`;
  }
  return undefined;
}

export function checkPort(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65_535) return `${where}: must be a port number from 1 to 65535`;
  return undefined;
}

export function checkInteger(value: unknown, where: string, min: number, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) return `${where}: must be a whole number from ${min} to ${max}`;
  return undefined;
}

/**
 * A name that Lapse will quote into SQL (role, user, database): any characters the server allows
 * except NUL and control characters, bounded in bytes (servers count bytes, not characters).
 */
export function checkName(value: unknown, where: string, maxBytes: number, what = 'name'): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return `${where}: must be a non-empty ${what}`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here.
  if (/[\u0000-\u001f\u007f]/.test(value)) return `${where}: the ${what} contains a control character; remove it`;
  if (Buffer.byteLength(value, 'utf8') > maxBytes) return `${where}: the ${what} is longer than ${maxBytes} bytes`;
  return undefined;
}

/** A list of names (roles…): 1..max entries, each passing checkName, no duplicates. */
export function checkNameList(value: unknown, where: string, maxBytes: number, max: number, what: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > max) return [`${where}: must be a list of 1 to ${max} ${what} names`];
  const problems = value.map((item, i) => checkName(item, `${where}[${i}]`, maxBytes, `${what} name`)).filter((p): p is string => p !== undefined);
  if (problems.length === 0 && new Set(value).size !== value.length) problems.push(`${where}: lists a ${what} twice; remove the duplicate`);
  return problems;
}

/** `settings.accounts: { <principalId>: <account> }` for elevate mode. */
export function checkAccounts(value: unknown, where: string, maxBytes: number): string[] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${where}: must map principal ids to account names, e.g. { alice: alice_dba }`];
  const entries = Object.entries(value);
  if (entries.length > 10_000) return [`${where}: at most 10000 entries`];
  return entries
    .map(([principal, account]) => checkName(account, `${where}.${principal}`, maxBytes, 'account name'))
    .filter((p): p is string => p !== undefined);
}

/** Unknown keys are usually typos; say so instead of ignoring them. */
export function checkKnownKeys(settings: Readonly<Record<string, unknown>>, known: readonly string[], where: string): string[] {
  return Object.keys(settings)
    .filter((key) => !known.includes(key))
    .map((key) => `${where}.${key}: unknown setting; known settings are ${known.join(', ')}`);
}
