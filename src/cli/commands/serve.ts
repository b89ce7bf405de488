import type { Command } from 'commander';
import { LapseError } from '../../domain/errors.js';
import { PACKAGE_VERSION } from '../version.js';
import { addLocationOptions, resolveLocation } from '../context.js';
import { action } from '../output.js';

/**
 * `lapse serve`: runs the lifecycle engine (the durable scheduler: provision, expiry, revoke
 * retries, timeouts), config reload on SIGHUP or file change, and the HTTP server (so far the
 * operations endpoints /healthz, /readyz, /metrics and /api/openapi.json).
 */
export function registerServeCommand(program: Command): void {
  addLocationOptions(program.command('serve'))
    .description('run Lapse: the scheduler that provisions and revokes on time, config reload, and the HTTP server')
    .option('-p, --port <port>', 'HTTP port (env LAPSE_PORT, default 8080)')
    .option('--host <address>', 'address to listen on (env LAPSE_HOST, default 127.0.0.1)')
    .action(
      action(async (options: { config?: string; dataDir?: string; port?: string; host?: string }) => {
        const port = Number(options.port ?? process.env.LAPSE_PORT ?? 8080);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new LapseError('validation_failed', `port "${options.port ?? process.env.LAPSE_PORT}" is not a TCP port`, { where: '--port', hint: 'Use a number from 0 to 65535.' });
        }
        const host = options.host ?? process.env.LAPSE_HOST ?? '127.0.0.1';
        const [{ pino }, { buildApiServer }, { watchConfig }, { announceFirstStart }, { openRuntime }] = await Promise.all([
          import('pino'),
          import('../../api/index.js'),
          import('../../config/index.js'),
          import('../first-start.js'),
          import('../runtime.js'),
        ]);
        const logger = pino({ name: 'lapse', level: process.env.LAPSE_LOG_LEVEL ?? 'info' });
        const location = resolveLocation(options);
        const runtime = await openRuntime(location, logger);
        const { engine } = runtime;
        await engine.start();
        // NB. Not awaited: a slow or unreachable target must not hold up the start. Results go to
        // the log, /readyz and the admin portal; an ssh target's CA key (and .pub) is written here.
        const checkTargets = () => void engine.checkTargets().catch((error: unknown) => logger.error({ err: error }, 'target checks could not run'));
        checkTargets();
        runtime.checkpointer.start();
        const server = await buildApiServer({ engine, logger, version: PACKAGE_VERSION, checkpointKeys: runtime.checkpointKeys });
        const address = await server.listen({ port, host });
        await announceFirstStart(engine, engine.config.auth.publicUrl ?? address, logger);
        const stats = await engine.stats();
        logger.info(
          { address, config: location.configPath, version: engine.config.version, database: engine.store.kind, dataDir: location.dataDir, jobs: stats.jobs },
          'lapse is running',
        );
        const stopWatching = watchConfig(location.configPath, {
          onReload: (config) => {
            // NB. The HTTP server reads auth.trustedProxies when it is built; say so rather than pretend.
            if (config.auth.trustedProxies.join() !== engine.config.auth.trustedProxies.join()) logger.warn('auth.trustedProxies changed: it takes effect when lapse serve restarts');
            void engine.reloadConfig(config).then(checkTargets, (error: unknown) => engine.configRejected(error));
          },
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
        await server.close();
        await runtime.close();
      }),
    );
}
