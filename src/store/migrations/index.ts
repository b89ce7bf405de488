import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_core.js';
import * as m0002 from './0002_principals.js';

/**
 * Every migration, in order. A static list (not a directory scan) so the same code runs from
 * src/ under tsx and from dist/ after the build. Add new migrations at the end; never edit one
 * that has shipped.
 */
const migrations: Record<string, Migration> = {
  '0001_core': m0001,
  '0002_principals': m0002,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

export const LATEST_MIGRATION = Object.keys(migrations).at(-1) as string;
