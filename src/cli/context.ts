import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { LapseError } from '../domain/errors.js';
import type { Store } from '../store/index.js';

/** The opened database, as the offline admin commands hand it to auth's unit of work. */
export type { Store };

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

/**
 * Opens the database the location names: PostgreSQL when DATABASE_URL is set, else <data-dir>/data.
 * With `mustExist`, an embedded database that is not there is an error instead of being created
 * (read-only commands such as `audit verify` must not conjure an empty, "valid" log). While a
 * `lapse serve` holds the embedded database, commands work through its admin socket; `viaServer:
 * false` (a server itself) refuses instead.
 */
export async function openStoreAt(location: RuntimeLocation, options: { migrate?: boolean; mustExist?: boolean; viaServer?: boolean } = {}): Promise<Store> {
  const dataDir = join(location.dataDir, 'data');
  if (options.mustExist && !location.databaseUrl && !existsSync(join(dataDir, 'pgdata'))) {
    throw new LapseError('not_found', `there is no Lapse database in ${location.dataDir}`, {
      where: dataDir,
      hint: 'Point --data-dir (or LAPSE_DATA_DIR) at the directory `lapse serve` uses, or set DATABASE_URL.',
    });
  }
  // Loaded here, not at the top: client commands never open a database and start faster without it.
  const { openStore, openViaAdminSocket } = await import('../store/index.js');
  try {
    return await openStore({
      databaseUrl: location.databaseUrl,
      dataDir,
      ...(options.migrate !== undefined ? { migrate: options.migrate } : {}),
    });
  } catch (error) {
    // The embedded database is held by a running `lapse serve`: work through its admin socket
    // (store/admin-socket.ts), unless this command is itself a server.
    if (options.viaServer === false || !(error instanceof LapseError) || error.code !== 'storage_locked') throw error;
    return openViaAdminSocket(location.dataDir);
  }
}
