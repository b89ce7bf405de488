import type { KeyObject } from 'node:crypto';
import { auditExportStatus, queryAuditEvents, verifyAuditChain, type AuditFilter } from '../audit/index.js';
import type { Principal } from '../domain/principal.js';
import type { AccessRequest } from '../domain/request.js';
import { canReview } from '../domain/review.js';
import {
  accessStatistics,
  databaseHealth,
  databaseNow,
  findIdempotencyRecord,
  forgetIdempotencyKeys,
  getGrant,
  getRequest,
  grantsWithCredentials,
  hasCredentials,
  listGrants,
  listRequests,
  listReviewInbox,
  listReviews,
  listReviewsOf,
  requesterHistory,
  recordIdempotencyKey,
  type GrantFilter,
  type IdempotencyRecord,
  type RequestFilter,
  type ReviewInboxFilter,
  type StatisticsWindow,
} from '../store/index.js';
import type { EngineContext } from './context.js';

/**
 * What the API and CLI read about requests and grants, without reaching into the store: each
 * read is one narrow question (authorization is the caller's: src/api/authorization.ts).
 */
export interface ReadModel {
  request(id: string): ReturnType<typeof getRequest>;
  grant(id: string): ReturnType<typeof getGrant>;
  /** Whether the grant's credentials wait to be fetched. */
  credentialsWaiting(grantId: string): Promise<boolean>;
  /** Which of these grants' credentials wait to be fetched. */
  credentialsWaitingAmong(grantIds: readonly string[]): Promise<Set<string>>;
  requests(filter: RequestFilter): ReturnType<typeof listRequests>;
  grants(filter: GrantFilter): ReturnType<typeof listGrants>;
  reviews(requestId: string): ReturnType<typeof listReviews>;
  requesterHistory(principalId: string, options: { since: Date; limit: number }): ReturnType<typeof requesterHistory>;
  /** Up to `limit` requests `reviewer` may review now (the domain's canReview), newest first. */
  reviewInbox(reviewer: Principal, filter: ReviewInboxFilter): Promise<AccessRequest[]>;
  /** The database's clock, as every lifecycle timestamp is (no skew between "now" and the rows). */
  now(): Promise<Date>;
  /** Figures over a window (the dashboard). */
  statistics(window: StatisticsWindow): ReturnType<typeof accessStatistics>;
  /** Audit events matching a filter (search, export). */
  auditEvents(filter: AuditFilter): ReturnType<typeof queryAuditEvents>;
  /** Recomputes the audit hash chain and checks its signed checkpoints. */
  verifyAudit(publicKeys: readonly KeyObject[]): ReturnType<typeof verifyAuditChain>;
  /** Whether the database is reachable and migrated (readiness). */
  databaseHealth(): ReturnType<typeof databaseHealth>;
  /** How far each configured audit sink and witness is behind the chain. */
  auditExports(): ReturnType<typeof auditExportStatus>;
  /** The audit events about these subjects, oldest first. */
  timeline(subjects: readonly string[], limit: number): ReturnType<typeof queryAuditEvents>;
}

export function readModel(context: EngineContext): ReadModel {
  const db = () => context.store.db;
  return {
    request: (id) => getRequest(db(), id),
    grant: (id) => getGrant(db(), id),
    credentialsWaiting: (grantId) => hasCredentials(db(), grantId),
    credentialsWaitingAmong: (grantIds) => grantsWithCredentials(db(), grantIds),
    requests: (filter) => listRequests(db(), filter),
    grants: (filter) => listGrants(db(), filter),
    reviews: (requestId) => listReviews(db(), requestId),
    requesterHistory: (principalId, options) => requesterHistory(db(), principalId, options),
    reviewInbox: async (reviewer, filter) => {
      const found: AccessRequest[] = [];
      let beforeId = filter.beforeId;
      // NB. SQL narrows to the reviewer's stage and own reviews; canReview then also excludes
      // requests that share a person through a token, so a page may need another query.
      for (;;) {
        const candidates = await listReviewInbox(db(), reviewer, { ...filter, ...(beforeId ? { beforeId } : {}), limit: filter.limit });
        const reviews = await listReviewsOf(
          db(),
          candidates.map((candidate) => candidate.id),
        );
        for (const candidate of candidates) {
          if (canReview(candidate, reviews.get(candidate.id) ?? [], reviewer)) found.push(candidate);
          if (found.length === filter.limit) return found;
        }
        if (candidates.length < filter.limit) return found;
        beforeId = candidates.at(-1)!.id;
      }
    },
    now: () => databaseNow(db()),
    statistics: (window) => accessStatistics(db(), window),
    auditEvents: (filter) => queryAuditEvents(db(), filter),
    verifyAudit: (publicKeys) => verifyAuditChain(db(), { publicKeys }),
    databaseHealth: () => databaseHealth(db()),
    auditExports: () => auditExportStatus(db(), context.config().audit.export),
    timeline: (subjects, limit) => queryAuditEvents(db(), { subjects: [...subjects], ascending: true, limit }),
  };
}

/**
 * The API's record of Idempotency-Keys: looked up before a use-case runs, written in its
 * transaction (through Engine.withSameTransactionWrite, which hands `record` the transaction).
 */
export interface IdempotencyKeys {
  forgetOlderThan(principalId: string, ttlMs: number): Promise<void>;
  find(principalId: string, key: string): Promise<IdempotencyRecord | undefined>;
  record: typeof recordIdempotencyKey;
}

export function idempotencyKeys(context: EngineContext): IdempotencyKeys {
  return {
    forgetOlderThan: (principalId, ttlMs) => forgetIdempotencyKeys(context.store.db, principalId, ttlMs),
    find: (principalId, key) => findIdempotencyRecord(context.store.db, principalId, key),
    record: recordIdempotencyKey,
  };
}
