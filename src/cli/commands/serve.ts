import type { Command } from 'commander';
import { pino } from 'pino';
import { watchConfig } from '../../config/index.js';
import { addLocationOptions, resolveLocation } from '../context.js';
import { action } from '../output.js';
import { openRuntime } from '../runtime.js';

/**
 * `lapse serve`: runs the lifecycle engine: the durable scheduler (provision, expiry, revoke
 * retries, timeouts) and config reload on SIGHUP or file change. The HTTP API joins it next.
 */
export function registerServeCommand(program: Command): void {
  addLocationOptions(program.command('serve'))
    .description('run Lapse: the scheduler that provisions and revokes on time, with config reload')
    .action(
      action(async (options: { config?: string; dataDir?: string }) => {
        const logger = pino({ name: 'lapse', level: process.env.LAPSE_LOG_LEVEL ?? 'info' });
        const location = resolveLocation(options);
        const runtime = await openRuntime(location, logger);
        const { engine } = runtime;
        await engine.start();
        runtime.checkpointer.start();
        const stats = await engine.stats();
        logger.info(
          { config: location.configPath, version: engine.config.version, database: engine.store.kind, dataDir: location.dataDir, jobs: stats.jobs },
          'lapse is running',
        );
        const stopWatching = watchConfig(location.configPath, {
          onReload: (config) => void engine.reloadConfig(config).catch((error: unknown) => engine.configRejected(error)),
          onError: (error) => void engine.configRejected(error),
        }, { initialVersion: engine.config.version });
        await new Promise<void>((resolve) => {
          const shutdown = (signal: string) => {
            logger.info({ signal }, 'shutting down');
            resolve();
          };
          process.once('SIGTERM', () => shutdown('SIGTERM'));
          process.once('SIGINT', () => shutdown('SIGINT'));
        });
        stopWatching();
        await runtime.close();
      }),
    );
}
