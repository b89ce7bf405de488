import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { openStore, type Store } from '../store/index.js';

/** Where a command finds its database and config: flags first, then environment, then defaults. */
export interface RuntimeLocation {
  readonly configPath: string;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
}

export function addLocationOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'lapse.yaml to use (env LAPSE_CONFIG, default ./lapse.yaml)')
    .option('--data-dir <dir>', 'embedded database and key directory (env LAPSE_DATA_DIR, default ./.lapse)');
}

export function resolveLocation(options: { config?: string; dataDir?: string }, env: NodeJS.ProcessEnv = process.env): RuntimeLocation {
  return {
    configPath: resolve(options.config ?? env.LAPSE_CONFIG ?? 'lapse.yaml'),
    dataDir: resolve(options.dataDir ?? env.LAPSE_DATA_DIR ?? '.lapse'),
    databaseUrl: env.DATABASE_URL || undefined,
  };
}

/** Opens the database the location names: PostgreSQL when DATABASE_URL is set, else <data-dir>/data. */
export function openStoreAt(location: RuntimeLocation, options: { migrate?: boolean } = {}): Promise<Store> {
  return openStore({
    databaseUrl: location.databaseUrl,
    dataDir: join(location.dataDir, 'data'),
    ...(options.migrate !== undefined ? { migrate: options.migrate } : {}),
  });
}
