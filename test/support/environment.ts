/** The real services tests use, overridable for machines where they live elsewhere. */
export const POSTGRES_ADMIN_URL = process.env.LAPSE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** `npm run test:offline`: only the tests that need no external service (PGlite is embedded). */
export function offline(): boolean {
  return process.env.LAPSE_TEST_OFFLINE === '1';
}
