import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHome, runLapse, startLapseServer, type LapseServer } from '../../test/support/lapse-server.js';
import { LapseError } from '../domain/errors.js';
import { EventStreamParser, LapseClient, resolveConnection, type ServerEvent } from './client.js';

const anything = z.unknown();

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `${(server.address() as AddressInfo).port}`;
}

async function failure(promise: Promise<unknown>): Promise<LapseError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LapseError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('resolveConnection and server addresses', () => {
  it('takes --server and --token, and normalises the address', () => {
    expect(resolveConnection({ server: 'https://lapse.example.com/', token: 'lapse_x' }, {})).toEqual({
      server: 'https://lapse.example.com',
      token: 'lapse_x',
    });
    expect(resolveConnection({ server: 'https://lapse.example.com/base/', token: 't' }, {}).server).toBe('https://lapse.example.com/base');
  });

  it('refuses addresses that are not plain http(s) URLs, before any call', () => {
    for (const bad of [
      'lapse.example.com',
      'ftp://lapse.example.com',
      'https://user:pw@lapse.example.com',
      'https://lapse.example.com/?x=1',
      'file:///etc/passwd',
    ]) {
      const error = (() => {
        try {
          resolveConnection({ server: bad, token: 't' }, {});
        } catch (e) {
          return e as LapseError;
        }
        return undefined;
      })();
      expect(error?.code, bad).toBe('validation_failed');
      expect(error?.exitCode).toBe(2);
    }
  });

  it('needs a server for --token, and a sign-in otherwise (exit 6), naming `lapse login`', () => {
    const home = cliHome();
    const previous = process.env.LAPSE_CONFIG_DIR;
    process.env.LAPSE_CONFIG_DIR = home.dir;
    try {
      expect(() => resolveConnection({ token: 'lapse_x' }, {})).toThrow(/--token needs a server/);
      const error = (() => {
        try {
          resolveConnection({}, {});
        } catch (e) {
          return e as LapseError;
        }
        return undefined;
      })();
      expect(error).toMatchObject({ code: 'unauthenticated', exitCode: 6 });
      expect(error?.details.hint).toMatch(/lapse login/);
    } finally {
      if (previous === undefined) delete process.env.LAPSE_CONFIG_DIR;
      else process.env.LAPSE_CONFIG_DIR = previous;
      home.remove();
    }
  });

  it('refuses to run with NODE_TLS_REJECT_UNAUTHORIZED=0 (certificate checks stay on)', () => {
    expect(() => new LapseClient({ server: 'https://lapse.example.com', token: 't' }, { env: { NODE_TLS_REJECT_UNAUTHORIZED: '0' } })).toThrow(
      /turns off TLS certificate checks/,
    );
  });
});

describe('EventStreamParser', () => {
  it('parses events split across chunks, with CRLF, comments and multi-line data', () => {
    const events: ServerEvent[] = [];
    const parser = new EventStreamParser((event) => events.push(event));
    parser.push(': keepalive\n\nevent: request\ndata: {"id":"req_1",');
    parser.push('"action":"x"}\r\n\r\nevent: grant\ndata: {"id":\ndata: "grt_1"}\n\ndata: not json\n\n');
    expect(events).toEqual([
      { event: 'request', data: { id: 'req_1', action: 'x' } },
      { event: 'grant', data: { id: 'grt_1' } },
      { event: 'message', data: undefined },
    ]);
  });

  it('refuses an endless line', () => {
    const parser = new EventStreamParser(() => {});
    expect(() => parser.push('data: '.padEnd(1024 * 1024 + 10, 'x'))).toThrow(/over 1 MiB/);
  });
});

describe('LapseClient against a real Lapse server', () => {
  let server: LapseServer;
  let token: string;
  beforeAll(async () => {
    server = await startLapseServer();
    token = await server.token('alice', ['read']);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('reads an answer', async () => {
    const client = new LapseClient({ server: server.url, token });
    const answer = await client.get('/api/v1/access/check', z.object({ allowed: z.boolean() }), {
      query: { principal: 'alice', target: 'prod-db', entitlement: 'readonly' },
    });
    expect(answer.allowed).toBe(false);
  });

  it("turns problem documents into LapseErrors with the server's code, detail, hint and exit code", async () => {
    const badToken = `lapse_${'A'.repeat(43)}`;
    const unauthenticated = await failure(
      new LapseClient({ server: server.url, token: badToken }).get('/api/v1/access/check', anything, {
        query: { principal: 'alice', target: 'prod-db', entitlement: 'readonly' },
      }),
    );
    expect(unauthenticated).toMatchObject({ code: 'unauthenticated', exitCode: 6 });
    expect(unauthenticated.details.hint).toMatch(/lapse login/);
    expect(JSON.stringify({ message: unauthenticated.message, details: unauthenticated.details })).not.toContain(badToken);

    const client = new LapseClient({ server: server.url, token });
    const forbidden = await failure(client.get('/api/v1/access/check', anything, { query: { principal: 'bob', target: 'prod-db', entitlement: 'readonly' } }));
    expect(forbidden).toMatchObject({ code: 'forbidden', exitCode: 6 });
    const invalid = await failure(client.get('/api/v1/access/check', anything, { query: { principal: 'alice', target: 'BAD;', entitlement: 'readonly' } }));
    expect(invalid).toMatchObject({ code: 'validation_failed', exitCode: 2 });
    expect(invalid.details.problems).toEqual(expect.arrayContaining([expect.stringMatching(/target/)]));
    // @ts-expect-error an undocumented path, to see the 404 (the types refuse it too)
    const missing = await failure(client.get('/api/v1/nothing-here', anything));
    expect(missing).toMatchObject({ code: 'not_found', exitCode: 3 });
  });

  it('checks answers against the schema it expects', async () => {
    const client = new LapseClient({ server: server.url, token });
    const error = await failure(
      // @ts-expect-error a schema that does not fit the documented answer (the types refuse it too)
      client.get('/api/v1/access/check', z.object({ items: z.array(z.string()) }), {
        query: { principal: 'alice', target: 'prod-db', entitlement: 'readonly' },
      }),
    );
    expect(error).toMatchObject({ code: 'internal' });
    expect(error.message).toMatch(/not what this lapse version expects \(items/);
  });
});

describe('LapseClient on the wire', () => {
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
  let handler: (request: IncomingMessage, response: ServerResponse, body: string) => void = () => {};
  const wire = createHttpServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });
      handler(request, response, body);
    });
  });
  let base = '';
  beforeAll(async () => {
    base = `http://127.0.0.1:${await listen(wire)}`;
  });
  afterAll(() => {
    wire.closeAllConnections();
    wire.close();
  });

  const problem = (response: ServerResponse, status: number, body: object) => {
    response.writeHead(status, { 'content-type': 'application/problem+json' });
    response.end(JSON.stringify(body));
  };

  it('repeats a POST refused for a step-up with X-Lapse-MFA and the same Idempotency-Key', async () => {
    seen.length = 0;
    handler = (request, response) => {
      if (!request.headers['x-lapse-mfa']) return problem(response, 401, { code: 'mfa_step_up_required', detail: 'needs MFA', stepUp: { factors: ['totp'] } });
      response.writeHead(201, { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    };
    const client = new LapseClient({ server: base, token: 't' }, { stepUp: async () => '123456' });
    // @ts-expect-error any body will do: only the step-up exchange is under test
    expect(await client.post('/api/v1/requests', anything, { body: { a: 1 } })).toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    const [first, second] = seen;
    expect(first!.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(second!.headers['idempotency-key']).toBe(first!.headers['idempotency-key']);
    expect(second!.headers['x-lapse-mfa']).toBe('totp 123456');
    expect(second!.body).toBe(first!.body);
    expect(first!.headers.authorization).toBe('Bearer t');

    // Each invocation gets its own key.
    // @ts-expect-error any body will do: only the step-up exchange is under test
    await client.post('/api/v1/requests', anything, { body: { a: 1 } });
    expect(seen[2]!.headers['idempotency-key']).not.toBe(first!.headers['idempotency-key']);

    // Fetching credentials must never be replayed: no key at all, not even on the step-up repeat.
    await client.post('/api/v1/grants/{id}/credentials', anything, { path: { id: 'grt_x' }, idempotent: false });
    expect(seen.slice(4).map((s) => s.headers['idempotency-key'])).toEqual([undefined, undefined]);
  });

  it('without a code, reports the step-up (exit 6) and says how to give one', async () => {
    handler = (_request, response) =>
      problem(response, 401, { code: 'mfa_step_up_required', detail: 'needs MFA', hint: 'Verify a second factor.', stepUp: { factors: ['totp'] } });
    // @ts-expect-error an undocumented path: only the transport is under test
    const error = await failure(new LapseClient({ server: base, token: 't' }, { stepUp: async () => undefined }).post('/x', anything, { body: {} }));
    expect(error).toMatchObject({ code: 'mfa_step_up_required', exitCode: 6 });
    expect(error.details.hint).toMatch(/--mfa-code/);
  });

  it('maps a status without a known code, refuses redirects, and bounds time', async () => {
    handler = (_request, response) => {
      response.writeHead(502, { 'content-type': 'text/html' });
      response.end('<html>bad gateway</html>');
    };
    const client = new LapseClient({ server: base, token: 't' }, { timeoutMs: 500 });
    // @ts-expect-error an undocumented path: only the transport is under test
    expect(await failure(client.get('/x', anything))).toMatchObject({ code: 'server_unreachable', exitCode: 5 });

    handler = (_request, response) => {
      response.writeHead(302, { location: 'http://127.0.0.1:1/steal' });
      response.end();
    };
    // @ts-expect-error an undocumented path: only the transport is under test
    const redirected = await failure(client.get('/x', anything));
    expect(redirected.message).toMatch(/redirect/);
    expect(seen.at(-1)!.url).toBe('/x');

    handler = () => {}; // never answers
    const started = Date.now();
    // @ts-expect-error an undocumented path: only the transport is under test
    const slow = await failure(client.get('/x', anything));
    expect(slow).toMatchObject({ code: 'server_unreachable' });
    expect(slow.message).toMatch(/did not answer within 0.5 s/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('reports a server that is not there (exit 5)', async () => {
    const closed = createHttpServer();
    const port = await listen(closed);
    closed.close();
    // @ts-expect-error an undocumented path: only the transport is under test
    const error = await failure(new LapseClient({ server: `http://127.0.0.1:${port}`, token: 't' }).get('/x', anything));
    expect(error).toMatchObject({ code: 'server_unreachable', exitCode: 5 });
    expect(error.message).toMatch(/ECONNREFUSED/);
  });
});

describe('TLS certificates are always verified', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lapse-tls-'));
  let base = '';
  const tls = (() => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_request, response) => {
      response.writeHead(404, { 'content-type': 'application/problem+json' });
      response.end(JSON.stringify({ code: 'not_found', detail: 'no such request' }));
    });
  })();
  beforeAll(async () => {
    base = `https://127.0.0.1:${await listen(tls)}`;
  });
  afterAll(() => {
    tls.closeAllConnections();
    tls.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a self-signed certificate, saying how to trust a private CA', async () => {
    const error = await failure(new LapseClient({ server: base, token: 't' }).get('/api/v1/requests/{id}', anything, { path: { id: 'x' } }));
    expect(error).toMatchObject({ code: 'server_unreachable', exitCode: 5 });
    expect(error.message).toMatch(/TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);
    expect(error.details.hint).toMatch(/NODE_EXTRA_CA_CERTS/);
  });

  it('the CLI talks to it once the CA is trusted with NODE_EXTRA_CA_CERTS, and never with NODE_TLS_REJECT_UNAUTHORIZED=0', async () => {
    const home = cliHome();
    try {
      const args = ['status', 'req_01jaaaaaaaaaaaaaaaaaaaaaaa', '--server', base];
      const env = { LAPSE_CONFIG_DIR: home.dir, LAPSE_TOKEN: 'lapse_t' };
      const [untrusted, trusted, insecure] = await Promise.all([
        runLapse(args, env),
        runLapse(args, { ...env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }),
        runLapse(args, { ...env, NODE_TLS_REJECT_UNAUTHORIZED: '0' }),
      ]);
      expect(untrusted.code).toBe(5);
      expect(untrusted.stderr).toMatch(/not trusted/);
      expect(trusted.code).toBe(3);
      expect(trusted.stderr).toMatch(/no such request/);
      expect(insecure.code).toBe(2);
      expect(insecure.stderr).toMatch(/turns off TLS certificate checks/);
    } finally {
      home.remove();
    }
  }, 180_000); // three `lapse` processes on a busy machine
});
