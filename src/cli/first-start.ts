import type { Logger } from 'pino';
import type { AuthService } from '../auth/index.js';
import { firstAdminRule } from '../auth/setup.js';
import type { Engine } from '../engine/index.js';

/**
 * On `lapse serve`: when nobody can administer Lapse yet, print a one-time setup link (24 hours,
 * single use, stored hashed), and say what the first admin must be. Never a default password.
 */
export async function announceFirstStart(engine: Engine, auth: AuthService, baseUrl: string, logger: Logger): Promise<string | null> {
  if (!(await auth.needsFirstAdmin(engine.config))) return null;
  const { token, expiresAt } = await auth.createSetupLink();
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
