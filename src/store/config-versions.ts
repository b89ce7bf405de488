import type { Executor } from './executor.js';

/** Records that a config version was loaded, once per version (the first load's time is kept). */
export async function recordConfigVersion(tx: Executor, version: { version: string; source: string; firstLoadedAt: Date }): Promise<void> {
  await tx
    .insertInto('config_versions')
    .values({ version: version.version, source: version.source, first_loaded_at: version.firstLoadedAt })
    .onConflict((oc) => oc.column('version').doNothing())
    .execute();
}
