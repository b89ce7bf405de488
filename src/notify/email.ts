import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { EmailChannelConfig } from '../config/types.js';
import { describeNotification, type NotificationContent } from './message.js';
import { UndeliverableError, type NotificationChannel, type OutgoingNotification } from './types.js';

/**
 * Email over SMTP (nodemailer): multipart text + HTML, TLS required (implicit TLS, or STARTTLS
 * that must succeed) unless the loopback-only `allowInsecure` opt-in. The delivery id is the
 * Message-ID, so a message repeated after a crash is recognisably the same message.
 */
export class EmailChannel implements NotificationChannel {
  readonly type = 'email';
  readonly name: string;
  readonly parallelSends: number;
  private readonly transport: Transporter<SMTPTransport.SentMessageInfo>;

  constructor(private readonly config: EmailChannelConfig) {
    this.name = config.name;
    this.parallelSends = config.smtp.connections;
    const { smtp } = config;
    this.transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      // NB. Without requireTLS a server that does not offer STARTTLS (or a man in the middle that
      // strips it) gets the mail, and the password, in the clear.
      requireTLS: !smtp.secure && !smtp.allowInsecure,
      ignoreTLS: smtp.allowInsecure && !smtp.secure,
      ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
      tls: { ...(smtp.ca ? { ca: [smtp.ca] } : {}), minVersion: 'TLSv1.2' },
      connectionTimeout: smtp.timeoutMs,
      greetingTimeout: smtp.timeoutMs,
      socketTimeout: smtp.timeoutMs,
      pool: true,
      maxConnections: smtp.connections,
      // A new connection costs a TLS handshake; some relays close one after a few hundred messages.
      maxMessages: 500,
    });
  }

  async send(message: OutgoingNotification, signal: AbortSignal): Promise<void> {
    const to = message.recipient.address;
    if (!to) {
      throw new UndeliverableError(
        `no email address on record for ${message.recipient.user ?? 'the recipient'}; it comes from the OIDC email claim, or an admin sets it (lapse admin user set-email)`,
        'skipped',
      );
    }
    const content = describeNotification(message);
    const mail = {
      from: this.config.from,
      to,
      subject: `[Lapse] ${content.title}`,
      text: renderText(content),
      html: renderHtml(content),
      messageId: `<${message.id}@lapse>`,
      headers: {
        'X-Lapse-Event': message.event,
        'X-Lapse-Delivery': message.id,
        'Auto-Submitted': 'auto-generated',
        ...(message.urgent ? { Importance: 'high', 'X-Priority': '1' } : {}),
      },
    };
    signal.throwIfAborted();
    const aborted = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error('send aborted')), { once: true });
    });
    try {
      const info = await Promise.race([this.transport.sendMail(mail), aborted]);
      if (info.rejected.length > 0) throw new UndeliverableError(`the SMTP server refused ${to}`);
    } catch (error) {
      const code = (error as { responseCode?: number }).responseCode;
      // 5xx on a recipient is permanent (no such mailbox); on anything else it may pass later.
      if (code !== undefined && code >= 550 && code <= 553 && (error as { command?: string }).command === 'RCPT TO') {
        throw new UndeliverableError(`the SMTP server refused ${to}: ${code}`);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}

export function renderText(content: NotificationContent): string {
  const width = Math.max(0, ...content.facts.map(([label]) => label.length));
  const lines = [content.summary, '', ...content.facts.map(([label, value]) => `${`${label}:`.padEnd(width + 2)}${value}`)];
  if (content.action) lines.push('', `${content.action.label}: ${content.action.url}`);
  if (content.note) lines.push('', content.note);
  lines.push('', '-- ', 'Lapse, just-in-time access. You get this because of your role or your request; your preferences are in the portal.');
  return lines.join('\n');
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function renderHtml(content: NotificationContent): string {
  const rows = content.facts
    .map(([label, value]) => `<tr><th align="left" style="padding:2px 12px 2px 0">${escape(label)}</th><td>${escape(value)}</td></tr>`)
    .join('');
  const action = content.action
    ? `<p><a href="${escape(content.action.url)}" style="display:inline-block;padding:8px 14px;background:#1f4fd1;color:#fff;text-decoration:none;border-radius:4px">${escape(content.action.label)}</a></p>`
    : '';
  const note = content.note ? `<p><em>${escape(content.note)}</em></p>` : '';
  return `<!doctype html><html><body style="font-family:sans-serif"><h2>${escape(content.title)}</h2><p>${escape(content.summary)}</p><table>${rows}</table>${action}${note}<p style="color:#777;font-size:12px">Lapse, just-in-time access.</p></body></html>`;
}
