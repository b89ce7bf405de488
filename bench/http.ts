import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import type { BenchResult } from './stats.js';

interface Server {
  readonly port: number;
  readonly token: string;
  stop(): Promise<void>;
}

/** Starts bench/http-server.ts in a second process and waits for its address and token. */
async function startServer(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./http-server.ts', import.meta.url).pathname, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const [first] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error('the benchmark server exited before it was ready');
    }),
  ])) as [string];
  const { port, token } = JSON.parse(first) as { port: number; token: string };
  return {
    port,
    token,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function load(scenario: string, backend: string, options: autocannon.Options): Promise<BenchResult> {
  const result = await autocannon({ connections: 10, ...options });
  const failures = result.errors + result.timeouts + result.non2xx;
  return {
    scenario,
    backend,
    count: result.requests.total,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    max_ms: result.latency.max,
    per_s: Math.round(result.requests.average),
    connections: options.connections ?? 10,
    failures,
  };
}

/**
 * Drives the HTTP API from this process against a server in another: access checks (the hot
 * read path a gateway or bastion would call) and creating auto-approved requests (each one also
 * provisions a grant through the noop connector in the server).
 */
export async function benchHttp(backend: string, serverArgs: string[], quick: boolean): Promise<BenchResult[]> {
  const server = await startServer(serverArgs);
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
    const duration = quick ? 3 : 10;
    // One request so the access check finds a grant, and a short warm-up.
    await fetch(`${base}/api/v1/requests`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ target: 'bench', entitlement: 'readonly', duration: '8h', reason: 'bench' }),
    });
    const check = `${base}/api/v1/access/check?principal=bench-user&target=bench&entitlement=readonly`;
    await autocannon({ url: check, headers, connections: 4, duration: 1 });
    const results = [await load('http_access_check', backend, { url: check, headers, duration })];
    results.push(
      await load('http_create_request', backend, {
        url: `${base}/api/v1/requests`,
        method: 'POST',
        headers,
        body: JSON.stringify({ target: 'bench', entitlement: 'readonly', duration: '1h', reason: 'bench' }),
        duration,
      }),
    );
    return results;
  } finally {
    await server.stop();
  }
}
