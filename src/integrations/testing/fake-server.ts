import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a fake received. */
export interface FakeCall {
  readonly method: string;
  readonly url: URL;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export type FakeAnswer = { status: number; json?: unknown; text?: string };

/**
 * The plumbing the fakes of this folder share: an HTTP server on 127.0.0.1 that records every
 * call, and can be told to be slow (`delayMs`), to fail (`failWith` a status) or to be down
 * (`stop()` then calls are refused by the OS).
 */
export abstract class FakeServer {
  readonly calls: FakeCall[] = [];
  delayMs = 0;
  failWith: number | undefined;
  private server: Server | undefined;

  /** The fake's answer to one call (auth already the fake's own business). */
  protected abstract answer(call: FakeCall): FakeAnswer;

  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('fake server not started');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Calls whose path starts with `prefix`. */
  callsTo(prefix: string): FakeCall[] {
    return this.calls.filter((c) => c.url.pathname.startsWith(prefix));
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call: FakeCall = {
        method: req.method ?? 'GET',
        url: new URL(req.url ?? '/', 'http://fake'),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      this.calls.push(call);
      const reply = () => {
        if (res.destroyed) return;
        const answer = this.failWith !== undefined ? { status: this.failWith, json: { error: `fake failing with ${this.failWith}` } } : this.answer(call);
        const body = answer.json !== undefined ? JSON.stringify(answer.json) : (answer.text ?? '');
        res.writeHead(answer.status, { 'content-type': answer.json !== undefined ? 'application/json' : 'text/plain' }).end(body);
      };
      if (this.delayMs > 0) setTimeout(reply, this.delayMs).unref();
      else reply();
    });
  }
}
