import { pino, type Logger } from 'pino';
import { loadConfigFile } from '../config/index.js';
import { builtInConnectors } from '../connectors/index.js';
import { Engine } from '../engine/index.js';
import { openStoreAt, type RuntimeLocation } from './context.js';

export interface Runtime {
  readonly engine: Engine;
  close(): Promise<void>;
}

/**
 * Opens everything a long-running command needs: config, database (migrated), connectors and the
 * engine. The engine's scheduler is started by the caller when it wants timers to run.
 */
export async function openRuntime(location: RuntimeLocation, logger: Logger = pino({ level: 'silent' })): Promise<Runtime> {
  const config = await loadConfigFile(location.configPath);
  const store = await openStoreAt(location);
  const engine = new Engine({ store, config, connectors: builtInConnectors(), logger });
  return {
    engine,
    close: async () => {
      await engine.stop();
      await store.close();
    },
  };
}
