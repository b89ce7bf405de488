import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** Any executor: the database or an open transaction. Use-cases pass their transaction. */
export type Executor = Kysely<Database>;
