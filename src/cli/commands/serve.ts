import type { Command } from 'commander';
import { LapseError } from '../../domain/errors.js';
import { PACKAGE_VERSION } from '../version.js';
import { addLocationOptions, resolveLocation } from '../context.js';
import { action } from '../output.js';

/** At shutdown, how long requests in flight get to finish before their connections are closed. */
export const HTTP_GRACE_MS = 5_000;
/** The longest `lapse serve` takes to exit after SIGTERM or SIGINT (docs/operations.md). */
export const SHUTDOWN_LIMIT_MS = 15_000;

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
          throw new LapseError('validation_failed', `port "${options.port ?? process.env.LAPSE_PORT}" is not a TCP port`, {
            where: '--port',
            hint: 'Use a number from 0 to 65535.',
          });
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
        const runtime = await openRuntime(location, logger, { server: true });
        const { engine } = runtime;
        await engine.start();
        // NB. Not awaited: a slow or unreachable target must not hold up the start. Results go to
        // the log, /readyz and the admin portal; an ssh target's CA key (and .pub) is written here.
        const checkTargets = () => void engine.checkTargets().catch((error: unknown) => logger.error({ err: error }, 'target checks could not run'));
        checkTargets();
        runtime.checkpointer.start();
        // `lapse admin …`, `audit verify` and `reconcile` from another shell borrow this process's
        // embedded database through <data-dir>/admin/lapse.sock (docs/operations.md).
        const stopAdminSocket = await runtime.serveAdminSocket((message) => logger.warn(message));
        runtime.exporter.start();
        const server = await buildApiServer({ engine, auth: runtime.auth, logger, version: PACKAGE_VERSION, checkpointKeys: runtime.checkpointKeys });
        const address = await server.listen({ port, host });
        await announceFirstStart(engine, runtime.auth, engine.config.auth.publicUrl ?? address, logger);
        const stats = await engine.stats();
        logger.info(
          { address, config: location.configPath, version: engine.config.version, database: runtime.databaseKind, dataDir: location.dataDir, jobs: stats.jobs },
          'lapse is running',
        );
        const stopWatching = watchConfig(
          location.configPath,
          {
            onReload: (config) => {
              // NB. The HTTP server reads auth.trustedProxies when it is built; say so rather than pretend.
              if (config.auth.trustedProxies.join() !== engine.config.auth.trustedProxies.join())
                logger.warn('auth.trustedProxies changed: it takes effect when lapse serve restarts');
              void engine.reloadConfig(config).then(checkTargets, (error: unknown) => engine.configRejected(error));
            },
            onError: (error) => void engine.configRejected(error),
          },
          { initialVersion: engine.config.version },
        );
        const signal = await new Promise<string>((resolve) => {
          process.once('SIGTERM', () => resolve('SIGTERM'));
          process.once('SIGINT', () => resolve('SIGINT'));
        });
        logger.info({ signal, limitMs: SHUTDOWN_LIMIT_MS }, 'shutting down');
        // NB. A bounded shutdown: whatever still runs at the limit is left to the job leases (another
        // replica or the next start takes the jobs up again), rather than a process that never exits.
        const limit = setTimeout(() => {
          logger.error({ limitMs: SHUTDOWN_LIMIT_MS }, 'shutdown took too long; exiting anyway (held jobs are taken up again when their lease ends)');
          process.exit(1);
        }, SHUTDOWN_LIMIT_MS).unref();
        const again = () => {
          logger.warn('second signal: exiting now');
          process.exit(1);
        };
        process.once('SIGTERM', again);
        process.once('SIGINT', again);
        stopWatching();
        // New connections are refused and event streams end at once (see routes/events.ts); requests
        // in flight get HTTP_GRACE_MS to finish before their connections are closed.
        const grace = setTimeout(() => {
          logger.warn({ graceMs: HTTP_GRACE_MS }, 'closing connections whose requests did not finish in time');
          server.server.closeAllConnections();
        }, HTTP_GRACE_MS).unref();
        await server.close();
        clearTimeout(grace);
        await stopAdminSocket?.();
        await runtime.close();
        clearTimeout(limit);
        logger.info('stopped');
      }),
    );
}
