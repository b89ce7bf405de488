import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import type { AuditTransport, ExportRecord } from './export-transports.js';

/**
 * Checkpoint witnesses: places outside the database that keep every signed checkpoint as it is
 * made, so a database rewound to an older checkpoint (newest checkpoints deleted, tail cut, head
 * rewound) no longer verifies against them (`lapse audit verify --witness`).
 */

/** An append-only JSON-lines file (on another volume, ideally write-once storage): never rotated, fsynced per batch. */
export class FileWitness implements AuditTransport {
  constructor(private readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  async send(records: readonly ExportRecord[]): Promise<void> {
    const fd = openSync(this.path, 'a', 0o600);
    try {
      writeSync(fd, records.map((r) => `${r.line}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  async close(): Promise<void> {}
}

/** Responses are read up to this much: a time-stamp reply with its certificates is a few KiB. */
const MAX_REPLY_BYTES = 256 * 1024;

/**
 * An RFC 3161 time-stamp authority: each checkpoint record (its JSON line, signature included) is
 * hashed (SHA-256) and time-stamped; the reply is kept beside the record in `dir` as
 * `checkpoint-<seq>.json` and `checkpoint-<seq>.tsr`, which `openssl ts -verify -data
 * checkpoint-<seq>.json -in checkpoint-<seq>.tsr -CAfile tsa-ca.pem` checks. A third party thereby
 * vouches that the checkpoint existed at that time.
 */
export class TimestampWitness implements AuditTransport {
  constructor(private readonly settings: { readonly url: string; readonly dir: string; readonly ca?: string }) {
    mkdirSync(settings.dir, { recursive: true });
  }

  async send(records: readonly ExportRecord[], signal: AbortSignal): Promise<void> {
    for (const record of records) {
      const digest = createHash('sha256').update(record.line).digest();
      const reply = await post(new URL(this.settings.url), timeStampRequest(digest, randomBytes(8)), this.settings.ca, signal);
      const status = replyStatus(reply);
      if (status !== 0 && status !== 1) throw new Error(`time-stamp authority ${new URL(this.settings.url).origin} refused the request (PKIStatus ${status})`);
      writeDurably(join(this.settings.dir, `checkpoint-${record.seq}.json`), record.line);
      writeDurably(join(this.settings.dir, `checkpoint-${record.seq}.tsr`), reply);
    }
  }

  async close(): Promise<void> {}
}

function writeDurably(path: string, data: string | Buffer): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, data, { mode: 0o600 });
  const fd = openSync(temporary, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

// ---- DER, just enough for a TimeStampReq and the status of a TimeStampResp ----

function der(tag: number, content: Buffer): Buffer {
  const length = content.length;
  const header =
    length < 0x80 ? Buffer.from([tag, length]) : length < 0x100 ? Buffer.from([tag, 0x81, length]) : Buffer.from([tag, 0x82, length >> 8, length & 0xff]);
  return Buffer.concat([header, content]);
}

const SHA256_ALGORITHM = Buffer.from('300d06096086480165030402010500', 'hex');

/** TimeStampReq { version 1, messageImprint { sha256, digest }, nonce, certReq TRUE } (RFC 3161 §2.4.1). */
export function timeStampRequest(digest: Buffer, nonce: Buffer): Buffer {
  const imprint = der(0x30, Buffer.concat([SHA256_ALGORITHM, der(0x04, digest)]));
  // A positive INTEGER: a leading zero byte when the high bit is set.
  const nonceInteger = der(0x02, nonce[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), nonce]) : nonce);
  return der(0x30, Buffer.concat([der(0x02, Buffer.from([1])), imprint, nonceInteger, Buffer.from([0x01, 0x01, 0xff])]));
}

/** The PKIStatus of a TimeStampResp (0 granted, 1 granted with modifications), or -1 when unreadable. */
export function replyStatus(reply: Buffer): number {
  // SEQUENCE { PKIStatusInfo SEQUENCE { status INTEGER, … }, token? }
  const skipHeader = (at: number): number => {
    const first = reply[at + 1];
    if (first === undefined) return -1;
    return at + 2 + (first & 0x80 ? first & 0x7f : 0);
  };
  if (reply[0] !== 0x30) return -1;
  const info = skipHeader(0);
  if (info < 0 || reply[info] !== 0x30) return -1;
  const status = skipHeader(info);
  if (status < 0 || reply[status] !== 0x02 || reply[status + 1] !== 1) return -1;
  return reply[status + 2] ?? -1;
}

function post(url: URL, body: Buffer, ca: string | undefined, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: 'POST', headers: { 'Content-Type': 'application/timestamp-query', 'Content-Length': body.length }, signal, ...(ca ? { ca } : {}) },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_REPLY_BYTES) chunks.push(chunk);
        });
        response.on('end', () => {
          if (response.statusCode !== 200) reject(new Error(`time-stamp authority ${url.origin} answered HTTP ${response.statusCode}`));
          else if (size > MAX_REPLY_BYTES) reject(new Error(`time-stamp authority ${url.origin} answered more than ${MAX_REPLY_BYTES} bytes`));
          else resolve(Buffer.concat(chunks));
        });
        response.on('error', reject);
      },
    );
    request.on('error', (error) => reject(new Error(`time-stamp authority ${url.origin}: ${error.message}`)));
    request.end(body);
  });
}
