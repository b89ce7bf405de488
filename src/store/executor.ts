import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

/** Any executor: the database or an open transaction. Use-cases pass their transaction. */
export type Executor = Kysely<Database>;

/** An open transaction: what a unit of work hands its work (see unit-of-work.ts). */
export type StoreTransaction = Transaction<Database>;
