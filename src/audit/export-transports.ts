import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';

/**
 * Where exported audit records go. A transport resolves send() only once the records are as
 * delivered as its protocol can tell (a file fsynced, an HTTP 200, a TLS write flushed); the
 * exporter moves its durable cursor only after that, so a failure or a crash means "send again"
 * (at least once), never "lost".
 */
export interface ExportRecord {
  /** The formatted record (one line, no line break). */
  readonly line: string;
  readonly kind: 'event' | 'checkpoint';
  readonly seq: number;
  readonly hash: string;
  /** The event's (or checkpoint's) time. */
  readonly at: string;
}

export interface AuditTransport {
  send(records: readonly ExportRecord[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface FileTransportSettings {
  readonly type: 'file';
  readonly path: string;
  /** Rotate when the file would grow past this. */
  readonly maxBytes: number;
  /** Rotated files kept: path.1 (newest) … path.N. */
  readonly keep: number;
}

/** Appends lines to a local file, fsynced per batch, rotated by size (path → path.1 → … → path.keep). */
export class FileTransport implements AuditTransport {
  constructor(private readonly settings: FileTransportSettings) {
    mkdirSync(dirname(settings.path), { recursive: true });
  }

  async send(records: readonly ExportRecord[]): Promise<void> {
    const data = Buffer.from(records.map((r) => `${r.line}\n`).join(''));
    const size = existsSync(this.settings.path) ? statSync(this.settings.path).size : 0;
    if (size > 0 && size + data.length > this.settings.maxBytes) this.rotate();
    const fd = openSync(this.settings.path, 'a', 0o600);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private rotate(): void {
    const { path, keep } = this.settings;
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    renameSync(path, `${path}.1`);
  }

  async close(): Promise<void> {}
}

export interface SyslogTlsTransportSettings {
  readonly type: 'syslog-tls';
  readonly host: string;
  readonly port: number;
  /** PEM CA bundle the receiver's certificate must chain to (default: the system's). */
  readonly ca?: string;
  /** Client certificate and key (PEM) when the receiver asks for one. */
  readonly cert?: string;
  readonly key?: string;
  /** The name the receiver's certificate must carry (default: host). */
  readonly serverName?: string;
}

/**
 * RFC 5425: syslog over TLS, each message framed by octet counting ("LEN SP MSG"). One connection,
 * reopened after an error. NB. The protocol has no acknowledgement: a flushed write is as far as
 * the sender can know; what the receiver had buffered when it crashed is lost to it (the exporter
 * still holds the cursor, but has moved it). Docs say so (monitoring.md).
 */
export class SyslogTlsTransport implements AuditTransport {
  private socket: TLSSocket | null = null;
  private failure: Error | null = null;

  constructor(private readonly settings: SyslogTlsTransportSettings) {}

  private async open(signal: AbortSignal): Promise<TLSSocket> {
    if (this.socket && !this.failure && !this.socket.destroyed) return this.socket;
    this.socket?.destroy();
    this.failure = null;
    const { host, port, ca, cert, key, serverName } = this.settings;
    // SNI carries names only (RFC 6066); an address is still checked against the certificate's IP SANs.
    const sni = serverName ?? (isIP(host) ? undefined : host);
    const socket = connect({ host, port, ca, cert, key, ...(sni ? { servername: sni } : {}), rejectUnauthorized: true });
    await new Promise<void>((resolve, reject) => {
      const abort = () => reject(new Error(`syslog-tls ${host}:${port}: connection timed out`));
      signal.addEventListener('abort', abort, { once: true });
      socket.once('secureConnect', () => {
        signal.removeEventListener('abort', abort);
        resolve();
      });
      socket.once('error', (error) => {
        signal.removeEventListener('abort', abort);
        reject(new Error(`syslog-tls ${host}:${port}: ${error.message}`));
      });
    }).catch((error: unknown) => {
      socket.destroy();
      throw error;
    });
    socket.on('error', (error) => {
      this.failure = error;
    });
    socket.on('close', () => {
      this.failure ??= new Error('connection closed by the receiver');
    });
    // The receiver never talks back; reading keeps a half-closed socket noticed.
    socket.on('data', () => {});
    this.socket = socket;
    return socket;
  }

  async send(records: readonly ExportRecord[], signal: AbortSignal): Promise<void> {
    const socket = await this.open(signal);
    const frames = records.map((r) => `${Buffer.byteLength(r.line)} ${r.line}`).join('');
    await new Promise<void>((resolve, reject) => {
      const abort = () => {
        socket.destroy();
        reject(new Error('syslog-tls: write timed out'));
      };
      signal.addEventListener('abort', abort, { once: true });
      socket.write(frames, (error) => {
        signal.removeEventListener('abort', abort);
        if (error) reject(new Error(`syslog-tls: ${error.message}`));
        else if (this.failure) reject(new Error(`syslog-tls: ${this.failure.message}`));
        else resolve();
      });
    }).catch((error: unknown) => {
      this.socket?.destroy();
      this.socket = null;
      throw error;
    });
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.end(() => resolve());
      setTimeout(resolve, 1_000).unref();
    });
    socket.destroy();
  }
}
