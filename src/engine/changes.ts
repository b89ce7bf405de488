import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import { CHANGES_CHANNEL, type AuditEntry, type Change } from './context.js';

/**
 * The stream of request and grant changes that live views (SSE, the CLI's --wait, the portal)
 * follow. On PostgreSQL it is fed by LISTEN, so a change committed by any replica reaches every
 * replica's subscribers; on the embedded database (one process) by the engine's own events.
 * The LISTEN session opens with the first subscriber and stays open until the engine stops.
 */
export class ChangeFeed {
  private readonly emitter = new EventEmitter();
  private listener: pg.Client | null = null;
  private opening: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly engineEvents: EventEmitter,
    private readonly logger: Logger,
  ) {
    this.emitter.setMaxListeners(0);
  }

  /** Calls `listener` with each change until the returned function is called. */
  async subscribe(listener: (change: Change) => void): Promise<() => void> {
    this.opening ??= this.open();
    await this.opening;
    this.emitter.on('change', listener);
    return () => {
      this.emitter.off('change', listener);
    };
  }

  private readonly fromEngine = (entry: AuditEntry) => {
    if (entry.subject && /^(req|grt)_/.test(entry.subject)) this.emitter.emit('change', { subject: entry.subject, action: entry.action });
  };

  private async open(): Promise<void> {
    if (this.store.kind !== 'postgres') {
      this.engineEvents.on('change', this.fromEngine);
      return;
    }
    const client = await this.store.connect();
    if (!client) return;
    client.on('notification', (message) => {
      if (message.channel !== CHANGES_CHANNEL || !message.payload) return;
      try {
        for (const change of JSON.parse(message.payload) as Change[]) this.emitter.emit('change', change);
      } catch (error) {
        this.logger.warn({ err: error }, 'ignored a malformed change notification');
      }
    });
    client.on('error', (error) => this.logger.error({ err: error }, 'change feed connection failed'));
    this.listener = client;
    await client.query(`LISTEN ${CHANGES_CHANNEL}`);
  }

  async stop(): Promise<void> {
    this.emitter.removeAllListeners();
    this.engineEvents.off('change', this.fromEngine);
    await this.opening?.catch(() => {});
    this.opening = null;
    const client = this.listener;
    this.listener = null;
    await client?.end().catch(() => {});
  }
}
