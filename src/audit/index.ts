export {
  appendAuditEvent,
  appendAuditEvents,
  auditedTransaction,
  chainHash,
  GENESIS_HASH,
  MAX_EVENT_BYTES,
  type AppendedEvent,
  type AuditEntry,
  type AuditEvent,
} from './chain.js';
export { canonicalJson } from '../domain/canonical-json.js';
export { AuditCheckpointer, checkpointMessage, writeCheckpoint, type CheckpointerOptions } from './checkpoints.js';
export { loadOrCreateSigningKey, readPublicKey, trustedCheckpointKeys, keyIdOf, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, type SigningKey } from './signing-key.js';
export { verifyAuditChain, type ProblemKind, type VerifyProblem, type VerifyResult } from './verify.js';
export { queryAuditEvents, type AuditFilter } from './query.js';
export { AuditExporter, type ExporterOptions } from './exporter.js';
export { auditExportStatus, type AuditExportStatus } from './export-status.js';
export { formatCheckpoint, formatEvent, EXPORT_FORMATS, type ChainedEvent, type ExportFormat, type PublishedCheckpoint } from './export-formats.js';
export { checkExportAgainst, checkWitness, readExportCopy, type AgainstResult, type WitnessProblem } from './witness-check.js';
