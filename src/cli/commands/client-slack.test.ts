import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CONFIG } from '../../../test/support/engine.js';
import { cliHome, runLapse, startLapseServer, type LapseServer } from '../../../test/support/lapse-server.js';

/** `lapse slack link-code` and `lapse slack link` against a real server, as a separate process. */
describe('lapse slack', { timeout: 120_000 }, () => {
  const home = cliHome();
  let server: LapseServer;
  beforeAll(async () => {
    server = await startLapseServer({ yaml: TEST_CONFIG });
  });
  afterAll(async () => {
    await server?.close();
    home.remove();
  });
  const run = async (who: string, args: string[], scopes: ('read' | 'request' | 'approve' | 'admin')[]) =>
    runLapse(args, { LAPSE_SERVER: server.url, LAPSE_TOKEN: await server.token(who, scopes), LAPSE_CONFIG_DIR: home.dir });

  it('gives a person their one-time linking code', async () => {
    const issued = await run('alice', ['slack', 'link-code'], ['read', 'request']);
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stdout).toMatch(/In Slack, send: \/lapse link [A-Z0-9]{4}-[A-Z0-9]{4} \(works once/);
  });

  it('links and unlinks for admins; refuses others and a missing id', async () => {
    const linked = await run('root', ['slack', 'link', 'alice', 'U0ALICE'], ['admin']);
    expect(linked.code, linked.stderr).toBe(0);
    expect(linked.stdout).toContain('linked alice to Slack user U0ALICE');
    const missing = await run('root', ['slack', 'link', 'alice'], ['admin']);
    expect(missing.code).toBe(2);
    const refused = await run('alice', ['slack', 'link', 'bob', 'U0BOB'], ['read', 'request']);
    expect(refused.code).toBe(6);
    const unlinked = await run('root', ['slack', 'link', 'alice', '--unlink'], ['admin']);
    expect(unlinked.code, unlinked.stderr).toBe(0);
    expect(unlinked.stdout).toContain('unlinked alice from Slack');
  });
});
