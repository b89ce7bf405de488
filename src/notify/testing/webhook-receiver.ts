import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One request as a receiver got it: the exact body bytes and the headers. */
export interface ReceivedCall {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type Answer = { status: number; headers?: Record<string, string>; body?: string };

export interface TestReceiver {
  readonly url: string;
  readonly received: ReceivedCall[];
  /** How the next requests are answered (default 200); the last answer repeats. */
  answers: Answer[];
  /** Checks a request before it is answered; a string it returns is the 400 body. */
  check?: (call: ReceivedCall) => string | undefined;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedCall[]>;
  close(): Promise<void>;
}

/** A real HTTP (or, with a key and certificate, HTTPS) server on 127.0.0.1 recording what it receives. */
export async function startReceiver(tls?: { key: string; cert: string }): Promise<TestReceiver> {
  const receiver: TestReceiver = {
    url: '',
    received: [],
    answers: [],
    waitFor: async (count, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (receiver.received.length < count) {
        if (Date.now() > deadline) throw new Error(`received ${receiver.received.length} calls, expected ${count}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return receiver.received;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
      const call = { path: req.url ?? '/', headers, body: Buffer.concat(chunks).toString('utf8') };
      receiver.received.push(call);
      const refused = receiver.check?.(call);
      const answer =
        refused !== undefined
          ? { status: 400, body: refused }
          : ((receiver.answers.length > 1 ? receiver.answers.shift()! : receiver.answers[0]) ?? { status: 200 });
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  };
  const server = tls ? createHttpsServer(tls, handle) : createHttpServer(handle);
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  (receiver as { url: string }).url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/hooks/lapse`;
  return receiver;
}
