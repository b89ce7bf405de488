import { readFileSync } from 'node:fs';

/** Lapse's version, from package.json (two levels up from both src/cli and dist/cli). */
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
