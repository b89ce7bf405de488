import type { Logger } from 'pino';
import { auditedChange } from '../auth/index.js';
import { createSetupToken, firstAdminRule, needsFirstAdmin } from '../auth/setup.js';
import type { Engine } from '../engine/index.js';

/**
 * On `lapse serve`: when nobody can administer Lapse yet, print a one-time setup link (24 hours,
 * single use, stored hashed), and say what the first admin must be. Never a default password.
 */
export async function announceFirstStart(engine: Engine, baseUrl: string, logger: Logger): Promise<string | null> {
  if (!(await needsFirstAdmin(engine.store.db, engine.config))) return null;
  const { token, expiresAt } = await auditedChange(engine.store.db, async (tx, now, audit) => {
    const created = await createSetupToken(tx, now);
    audit({ action: 'setup.link_created', actor: 'system', data: { expiresAt: created.expiresAt.toISOString() } });
    return created;
  });
  const link = `${baseUrl.replace(/\/+$/, '')}/setup?token=${token}`;
  const rule = firstAdminRule(engine.config);
  // NB. The link is a secret: it goes to the terminal only, never into the structured log (which is shipped elsewhere).
  logger.warn({ expiresAt: expiresAt.toISOString() }, 'no admin yet: a one-time setup link was printed to the terminal');
  process.stderr.write(
    [
      '',
      'Lapse has no admin yet. Create the first one (link valid once, for 24 hours):',
      '',
      `  ${link}`,
      '',
      `  ${rule}`,
      `  Or with the API: curl -X POST ${baseUrl.replace(/\/+$/, '')}/api/v1/setup -H 'content-type: application/json' -d '{"token":"<token from the link>","username":"...","password":"..."}'`,
      '',
    ].join('\n'),
  );
  return link;
}
