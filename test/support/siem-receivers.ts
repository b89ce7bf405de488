import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * Receivers for audit export tests: a test PKI made with openssl (a CA, a server certificate for
 * 127.0.0.1, a time-stamping certificate), a real rsyslogd with gnutls started on its own config,
 * a Splunk HEC fake that checks the token and the event shape as the real collector does, an
 * OTLP/HTTP logs receiver, and an RFC 3161 authority built on `openssl ts -reply`.
 */

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

export interface TestPki {
  readonly dir: string;
  readonly caPem: string;
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly tsaCert: string;
  readonly tsaKey: string;
}

export function makeTestPki(dir: string): TestPki {
  mkdirSync(dir, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=Lapse Test CA',
    ],
    dir,
  );
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'],
    dir,
  );
  openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'],
    dir,
  );
  writeFileSync(join(dir, 'tsa.ext'), 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n');
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tsa.key', '-out', 'tsa.csr', '-subj', '/CN=Lapse Test TSA'],
    dir,
  );
  openssl(
    ['x509', '-req', '-in', 'tsa.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tsa.pem', '-days', '2', '-extfile', 'tsa.ext'],
    dir,
  );
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return {
    dir,
    caPem: read('ca.pem'),
    caFile: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    tsaCert: join(dir, 'tsa.pem'),
    tsaKey: join(dir, 'tsa.key'),
  };
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Rsyslog {
  readonly port: number;
  readonly output: string;
  lines(): string[];
  stop(): Promise<void>;
}

/** A private rsyslogd (-n, own config) receiving RFC 5425 syslog over TLS and writing MSGID|SD|MSG per line to a file. */
export async function startRsyslog(dir: string, pki: TestPki): Promise<Rsyslog> {
  mkdirSync(join(dir, 'work'), { recursive: true });
  const port = await freePort();
  const output = join(dir, 'received.log');
  const conf = join(dir, 'rsyslog.conf');
  writeFileSync(
    conf,
    `global(workDirectory="${join(dir, 'work')}" maxMessageSize="128k"
  DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${pki.caFile}"
  DefaultNetstreamDriverCertFile="${pki.serverCert}" DefaultNetstreamDriverKeyFile="${pki.serverKey}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon" MaxSessions="50")
template(name="parsed" type="string" string="%msgid%|%structured-data%|%msg%\\n")
input(type="imtcp" port="${port}")
action(type="omfile" file="${output}" template="parsed" flushOnTXEnd="on" asyncWriting="off")
`,
  );
  const child: ChildProcess = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${stderr}`);
    const listening = await new Promise<boolean>((resolve) => {
      const socket = createNetServer();
      socket.once('error', () => resolve(true));
      socket.listen(port, '127.0.0.1', () => socket.close(() => resolve(false)));
    });
    if (listening) break;
    if (Date.now() > deadline) throw new Error(`rsyslogd did not listen on ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    output,
    lines: () => (existsSync(output) ? readFileSync(output, 'utf8').split('\n').filter(Boolean) : []),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function body(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export interface HecEvent {
  time: number;
  host: string;
  source: string;
  sourcetype: string;
  index?: string;
  event: unknown;
}

export interface FakeHec {
  readonly url: string;
  readonly events: HecEvent[];
  /** Requests seen, and how many were refused. */
  readonly requests: { count: number; refused: number };
  /** Answer 503 (server busy) while set. */
  busy: boolean;
  close(): Promise<void>;
}

/**
 * Splunk HEC as far as a sender sees it: POST /services/collector/event, `Authorization: Splunk
 * <token>` (401 code 2 without, 403 code 4 for a wrong token), a body of concatenated event
 * objects each with an `event` (400 code 12 "Event field is required" / code 6 "Invalid data
 * format"), 200 `{"text":"Success","code":0}`.
 */
export async function startFakeHec(token: string): Promise<FakeHec> {
  const events: HecEvent[] = [];
  const requests = { count: 0, refused: 0 };
  const state = { busy: false };
  const answer = (response: ServerResponse, status: number, text: string, code: number) => {
    if (code !== 0) requests.refused += 1;
    response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ text, code }));
  };
  const server = createServer(async (request, response) => {
    requests.count += 1;
    const raw = (await body(request)).toString('utf8');
    if (request.method !== 'POST' || request.url !== '/services/collector/event')
      return answer(response, 404, 'The requested URL was not found on this server.', 404);
    const auth = request.headers.authorization;
    if (!auth) return answer(response, 401, 'Token is required', 2);
    if (auth !== `Splunk ${token}`) return answer(response, 403, 'Invalid token', 4);
    if (state.busy) return answer(response, 503, 'Server is busy', 9);
    const batch: HecEvent[] = [];
    // Concatenated JSON objects, whitespace between them allowed (scanned once, not re-sliced).
    try {
      let start = 0;
      while (start < raw.length) {
        while (start < raw.length && /\s/.test(raw[start]!)) start++;
        if (start >= raw.length) break;
        let depth = 0;
        let inString = false;
        let end = -1;
        for (let i = start; i < raw.length; i++) {
          const c = raw.charCodeAt(i);
          if (inString) {
            if (c === 92) i++;
            else if (c === 34) inString = false;
          } else if (c === 34) inString = true;
          else if (c === 123) depth++;
          else if (c === 125 && --depth === 0) {
            end = i;
            break;
          }
        }
        if (end < 0) throw new Error('unterminated');
        batch.push(JSON.parse(raw.slice(start, end + 1)) as HecEvent);
        start = end + 1;
      }
    } catch {
      return answer(response, 400, 'Invalid data format', 6);
    }
    if (batch.length === 0 || batch.some((e) => e.event === undefined || e.event === '')) return answer(response, 400, 'Event field is required', 12);
    events.push(...batch);
    answer(response, 200, 'Success', 0);
  });
  const url = await listen(server);
  return {
    url,
    events,
    requests,
    get busy() {
      return state.busy;
    },
    set busy(value: boolean) {
      state.busy = value;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface OtlpReceiver {
  readonly url: string;
  /** Each request's parsed OTLP/JSON ExportLogsServiceRequest. */
  readonly requests: { resourceLogs: { scopeLogs: { logRecords: Record<string, unknown>[] }[] }[] }[];
  close(): Promise<void>;
}

/** An OTLP/HTTP logs receiver (JSON encoding): POST /v1/logs, answers an empty ExportLogsServiceResponse. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: OtlpReceiver['requests'] = [];
  const server = createServer(async (request, response) => {
    const raw = await body(request);
    if (request.method !== 'POST' || request.url !== '/v1/logs' || !String(request.headers['content-type']).startsWith('application/json')) {
      response.writeHead(415).end();
      return;
    }
    requests.push(JSON.parse(raw.toString('utf8')) as OtlpReceiver['requests'][number]);
    response.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  });
  const base = await listen(server);
  return { url: `${base}/v1/logs`, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export interface TimestampAuthority {
  readonly url: string;
  readonly replies: number;
  close(): Promise<void>;
}

/** An RFC 3161 time-stamp authority: each application/timestamp-query is answered by `openssl ts -reply`. */
export async function startTimestampAuthority(dir: string, pki: TestPki): Promise<TimestampAuthority> {
  const conf = join(dir, 'tsa.cnf');
  writeFileSync(join(dir, 'tsaserial'), '01\n');
  writeFileSync(
    conf,
    `[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = ${dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = ${pki.tsaCert}
certs = ${pki.caFile}
signer_key = ${pki.tsaKey}
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`,
  );
  let replies = 0;
  let n = 0;
  const server = createServer(async (request, response) => {
    const query = await body(request);
    if (request.headers['content-type'] !== 'application/timestamp-query') {
      response.writeHead(415).end();
      return;
    }
    n += 1;
    const queryFile = join(dir, `q${n}.tsq`);
    const replyFile = join(dir, `r${n}.tsr`);
    writeFileSync(queryFile, query);
    try {
      openssl(['ts', '-reply', '-config', conf, '-queryfile', queryFile, '-out', replyFile], dir);
      replies += 1;
      response.writeHead(200, { 'Content-Type': 'application/timestamp-reply' }).end(readFileSync(replyFile));
    } catch {
      response.writeHead(400).end();
    }
  });
  const url = await listen(server);
  return {
    url,
    get replies() {
      return replies;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
