import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { EffectiveConfig } from './types.js';
import { loadConfigFile } from './load.js';

export interface ConfigWatchHandlers {
  /** A changed, valid config: the caller swaps it in. */
  readonly onReload: (config: EffectiveConfig) => void;
  /** A changed but invalid config: the caller keeps the old one and reports this. */
  readonly onError: (error: unknown) => void;
}

/**
 * Reloads the config on SIGHUP and when the file changes. Watches the directory, not the file,
 * because editors and config management replace files by rename, which ends a file watch.
 * Debounced, and only a real change of content (a new version hash) is reported.
 */
export function watchConfig(
  path: string,
  handlers: ConfigWatchHandlers,
  options: { env?: NodeJS.ProcessEnv; initialVersion?: string; debounceMs?: number } = {},
): () => void {
  let version = options.initialVersion;
  let timer: NodeJS.Timeout | undefined;
  let loading = Promise.resolve();
  const reload = () => {
    loading = loading.then(async () => {
      try {
        const config = await loadConfigFile(path, options.env ?? process.env);
        if (config.version === version) return;
        version = config.version;
        handlers.onReload(config);
      } catch (error) {
        handlers.onError(error);
      }
    });
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, options.debounceMs ?? 200);
  };
  const watcher = watch(dirname(path), (_event, filename) => {
    if (filename === null || filename === basename(path)) schedule();
  });
  watcher.on('error', handlers.onError);
  const onHangup = () => schedule();
  process.on('SIGHUP', onHangup);
  return () => {
    clearTimeout(timer);
    watcher.close();
    process.off('SIGHUP', onHangup);
  };
}
