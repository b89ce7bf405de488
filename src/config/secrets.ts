import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/**
 * Secret references: a setting's value may be `${env:NAME}` or `${file:path}` (relative paths are
 * relative to the config file). Secret-looking keys must use one, so credentials never sit in a
 * file that is reviewed in git. Resolved values exist only in memory and are never logged.
 */
const REFERENCE = /^\$\{(env|file):([^}]{1,1024})\}$/;
const SECRET_KEY = /(password|passwd|secret|token|api[_-]?key|private[_-]?key|credential)$/i;
const MAX_SECRET_FILE_BYTES = 64 * 1024;

export interface SecretContext {
  readonly env: NodeJS.ProcessEnv;
  readonly baseDir: string;
  readonly problems: string[];
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

export function resolveReference(value: string, where: string, context: SecretContext): string {
  const match = REFERENCE.exec(value);
  if (!match) {
    if (value.includes('${')) context.problems.push(`${where}: "${value.slice(0, 60)}" is not a secret reference; write \${env:NAME} or \${file:path}`);
    return value;
  }
  const [, kind, name] = match as unknown as [string, 'env' | 'file', string];
  if (kind === 'env') {
    const resolved = context.env[name];
    if (resolved === undefined || resolved === '') {
      context.problems.push(`${where}: environment variable ${name} is not set; set it or change the reference`);
      return '';
    }
    return resolved;
  }
  const path = isAbsolute(name) ? name : resolve(context.baseDir, name);
  try {
    const content = readFileSync(path);
    if (content.length > MAX_SECRET_FILE_BYTES) {
      context.problems.push(`${where}: secret file ${path} is larger than 64 KiB`);
      return '';
    }
    return content.toString('utf8').replace(/\r?\n$/, '');
  } catch (error) {
    context.problems.push(`${where}: cannot read secret file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path and permissions`);
    return '';
  }
}

/** Resolves every reference in a settings tree; flags secret-looking keys holding literal values. */
export function resolveSettings(value: unknown, where: string, context: SecretContext, key = ''): unknown {
  if (typeof value === 'string') {
    if (isSecretKey(key) && value !== '' && !REFERENCE.test(value)) {
      context.problems.push(
        `${where}: "${key}" looks like a secret but holds a literal value; use \${env:NAME} or \${file:path} so it is not stored in the config`,
      );
    }
    return resolveReference(value, where, context);
  }
  if (Array.isArray(value)) return value.map((item, i) => resolveSettings(item, `${where}[${i}]`, context, key));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveSettings(v, `${where}.${k}`, context, k)]));
  }
  return value;
}
