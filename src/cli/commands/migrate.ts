import type { Command } from 'commander';
import { addLocationOptions, openStoreAt, resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';

export function registerMigrateCommand(program: Command): void {
  addLocationOptions(program.command('migrate'))
    .description('apply pending database migrations (also done on every start)')
    .option('--status', 'only list pending migrations')
    .action(
      action(async (options: { config?: string; dataDir?: string; status?: boolean }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { migrateToLatest, pendingMigrations } = await import('../../store/index.js');
        const location = resolveLocation(options);
        const store = await openStoreAt(location, { migrate: false, mustExist: options.status === true });
        try {
          if (options.status) {
            const pending = await pendingMigrations(store.db);
            emit(globals, { database: store.kind, pending }, () => (pending.length === 0 ? 'database is up to date' : `pending: ${pending.join(', ')}`));
            return;
          }
          const applied = await migrateToLatest(store.db);
          emit(globals, { database: store.kind, applied }, () =>
            applied.length === 0 ? `database (${store.kind}) is up to date` : `applied ${applied.length} migration(s): ${applied.join(', ')}`,
          );
        } finally {
          await store.close();
        }
      }),
    );
}
