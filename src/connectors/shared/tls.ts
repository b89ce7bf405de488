/**
 * The `settings.tls` block every network connector shares:
 *
 *   tls: { enabled: true, ca: ${file:/etc/lapse/db-ca.pem}, insecureSkipVerify: false }
 *
 * Verification is on whenever TLS is used; `insecureSkipVerify: true` is the only way to turn it
 * off, and the connector warns loudly each time it opens a connection that way.
 */
export interface TlsSettings {
  /** CA bundle (PEM) to verify the server against; the system roots when absent. */
  readonly ca?: string;
  readonly rejectUnauthorized: boolean;
}

const MAX_CA_BYTES = 64 * 1024;

/** Problems with `settings.tls` as "<where>.tls.<key>: …" strings. */
export function validateTls(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${where}.tls: must be a map with enabled, ca and insecureSkipVerify`];
  const problems: string[] = [];
  const { enabled, ca, insecureSkipVerify, ...unknown } = value as Record<string, unknown>;
  for (const key of Object.keys(unknown)) problems.push(`${where}.tls.${key}: unknown setting; use enabled, ca or insecureSkipVerify`);
  if (enabled !== undefined && typeof enabled !== 'boolean') problems.push(`${where}.tls.enabled: must be true or false`);
  if (insecureSkipVerify !== undefined && typeof insecureSkipVerify !== 'boolean') problems.push(`${where}.tls.insecureSkipVerify: must be true or false`);
  if (ca !== undefined && (typeof ca !== 'string' || !ca.includes('-----BEGIN CERTIFICATE-----') || ca.length > MAX_CA_BYTES)) {
    problems.push(`${where}.tls.ca: must be a PEM certificate bundle (up to 64 KiB); write \${file:/path/to/ca.pem}`);
  }
  return problems;
}

/** The TLS options for a connection, or undefined for plain TCP. Call validateTls first. */
export function tlsOptions(value: unknown): TlsSettings | undefined {
  if (value === undefined || value === null || typeof value !== 'object') return undefined;
  const { enabled, ca, insecureSkipVerify } = value as Record<string, unknown>;
  // NB. Giving a CA or an explicit skip implies TLS: nobody writes a CA and means plain text.
  const on = enabled === true || (enabled === undefined && (typeof ca === 'string' || insecureSkipVerify === true));
  if (!on) return undefined;
  return { ...(typeof ca === 'string' ? { ca } : {}), rejectUnauthorized: insecureSkipVerify !== true };
}

/** Where connectors send warnings; defaults to stderr when Lapse passes no logger. */
export type Warn = (message: string) => void;

export function defaultWarn(message: string): void {
  // eslint-disable-next-line no-console -- connectors get no logger from builtInConnectors(); an insecure TLS setting must still be loud.
  console.warn(message);
}

export function warnIfInsecure(tls: TlsSettings | undefined, target: string, warn: Warn): void {
  if (tls && !tls.rejectUnauthorized) {
    warn(
      `WARNING: target ${target} connects with tls.insecureSkipVerify: true; the server certificate is NOT verified and anyone on the path can impersonate it`,
    );
  }
}
