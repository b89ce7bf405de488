import { pino, type Logger } from 'pino';
import type { KeyObject } from 'node:crypto';
import { AuthService } from '../auth/index.js';
import { hostname } from 'node:os';
import { AuditCheckpointer, AuditExporter, loadOrCreateSigningKey, trustedCheckpointKeys } from '../audit/index.js';
import { loadConfigFile } from '../config/index.js';
import { loadOrCreateSealer } from '../secrets/index.js';
import { builtInConnectors, targetSettingsCheck } from '../connectors/index.js';
import { Engine } from '../engine/index.js';
import { openStoreAt, type RuntimeLocation } from './context.js';
import { PACKAGE_VERSION } from './version.js';

export interface Runtime {
  readonly engine: Engine;
  /** Sign-in, sessions, tokens and MFA over the same database and sealer (for the API). */
  readonly auth: AuthService;
  /** Signs audit checkpoints while the process runs (started by the caller). */
  readonly checkpointer: AuditCheckpointer;
  /** Streams the audit chain to the configured sinks and its checkpoints to witnesses (started by the caller). */
  readonly exporter: AuditExporter;
  /** The public keys audit verification trusts (trustedCheckpointKeys): the API's and the demo's. */
  readonly checkpointKeys: readonly KeyObject[];
  /** pglite or postgres, for what the CLI prints. */
  readonly databaseKind: string;
  /** On the embedded database: lend the session to admin commands over the data dir's admin socket until the returned stop. */
  serveAdminSocket(log: (message: string) => void): Promise<(() => Promise<void>) | null>;
  close(): Promise<void>;
}

/**
 * Opens everything a long-running command needs: config, database (migrated), connectors, the
 * engine, the auth service and the audit checkpointer. The caller starts the engine and checkpointer when it wants
 * timers to run.
 */
export async function openRuntime(
  location: RuntimeLocation,
  logger: Logger = pino({ level: 'silent' }),
  options: { readonly server?: boolean } = {},
): Promise<Runtime> {
  const connectors = builtInConnectors();
  // Connector settings problems are reported with the rest of the config's, each located.
  const config = await loadConfigFile(location.configPath, process.env, { checkTarget: targetSettingsCheck(connectors) });
  const key = loadOrCreateSigningKey({ pem: config.audit.signingKeyPem, dataDir: location.dataDir });
  const checkpointKeys = trustedCheckpointKeys({ signingKeyPem: config.audit.signingKeyPem, dataDir: location.dataDir }).keys;
  // A server must own its database; other commands may borrow a running server's (admin socket).
  const store = await openStoreAt(location, { viaServer: !options.server });
  const sealer = loadOrCreateSealer({ key: config.secrets.encryptionKey, previousKeys: config.secrets.previousEncryptionKeys, dataDir: location.dataDir });
  const engine = new Engine({ store, config, connectors, logger, sealer });
  // NB. Sinks and witnesses are read at start; a reload does not change them (docs/monitoring.md).
  const exporter = new AuditExporter(store.db, config.audit.export, {
    hostname: hostname(),
    productVersion: PACKAGE_VERSION,
    onError: (stream, error) => logger.warn({ stream, err: error }, 'audit export failed; will retry'),
  });
  const checkpointer = new AuditCheckpointer(store.db, key, {
    every: config.audit.checkpointEvery,
    intervalMs: config.audit.checkpointIntervalMs,
    onError: (error) => logger.error({ err: error }, 'audit checkpoint failed'),
    onCheckpoint: () => exporter.wake(),
  });
  return {
    engine,
    auth: new AuthService(store.db, sealer),
    checkpointer,
    exporter,
    checkpointKeys,
    databaseKind: store.kind,
    serveAdminSocket: async (log) => (store.serveAdminSocket ? store.serveAdminSocket(location.dataDir, { log }) : null),
    close: async () => {
      await engine.stop();
      await checkpointer.stop();
      // After the last checkpoint, so the witnesses get it too.
      await exporter.stop({ flush: true });
      await store.close();
    },
  };
}
