import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_core.js';
import * as m0002 from './0002_principals.js';
import * as m0003 from './0003_parameters_credentials.js';
import * as m0004 from './0004_reconciliation.js';
import * as m0005 from './0005_sessions.js';
import * as m0006 from './0006_mfa.js';
import * as m0007 from './0007_api.js';
import * as m0008 from './0008_extend_jobs.js';
import * as m0009 from './0009_statistics.js';
import * as m0010 from './0010_token_issuer.js';
import * as m0011 from './0011_propagation_pending.js';
import * as m0012 from './0012_notifications.js';
import * as m0013 from './0013_vault.js';
import * as m0014 from './0014_token_lineage.js';
import * as m0015 from './0015_slack.js';
import * as m0016 from './0016_event_webhooks.js';
import * as m0018 from './0018_audit_sinks.js';
import * as m0019 from './0019_risk.js';
import * as m0020 from './0020_reviews.js';
import * as m0022 from './0022_identity.js';

/**
 * Every migration, in order. A static list (not a directory scan) so the same code runs from
 * src/ under tsx and from dist/ after the build. Add new migrations at the end; never edit one
 * that has shipped.
 */
const migrations: Record<string, Migration> = {
  '0001_core': m0001,
  '0002_principals': m0002,
  '0003_parameters_credentials': m0003,
  '0004_reconciliation': m0004,
  '0005_sessions': m0005,
  '0006_mfa': m0006,
  '0007_api': m0007,
  '0008_extend_jobs': m0008,
  '0009_statistics': m0009,
  '0010_token_issuer': m0010,
  '0011_propagation_pending': m0011,
  '0012_notifications': m0012,
  '0013_vault': m0013,
  '0014_token_lineage': m0014,
  '0015_slack': m0015,
  '0016_event_webhooks': m0016,
  '0018_audit_sinks': m0018,
  '0019_risk': m0019,
  '0020_reviews': m0020,
  '0022_identity': m0022,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

export const LATEST_MIGRATION = Object.keys(migrations).at(-1) as string;
