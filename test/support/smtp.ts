import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { makeTestPki, type TestPki } from '../../src/connectors/azure-rbac/testing/test-ca.js';

/**
 * A real SMTP server for the tests (the `smtp-server` package) with STARTTLS on a certificate
 * from a throw-away CA the client trusts through `smtp.ca`; what arrives is parsed with
 * `mailparser`. `stall()` makes it accept connections and then never answer, like a hung relay.
 */
export interface Received {
  readonly messageId: string;
  readonly to: string[];
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly headers: ParsedMail['headers'];
  /** When the server had the whole message (epoch ms). */
  readonly at: number;
  /** Whether the session was under TLS when the message came. */
  readonly secure: boolean;
}

export interface TestSmtpServer {
  readonly port: number;
  readonly pki: TestPki;
  readonly received: Received[];
  /** Also recorded by id, for the crash tests (the same Message-ID twice is a repeat). */
  readonly user: string;
  readonly password: string;
  stall(on: boolean): void;
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

let sharedPki: TestPki | undefined;

export async function startSmtpServer(options: { requireAuth?: boolean } = {}): Promise<TestSmtpServer> {
  const pki = (sharedPki ??= makeTestPki());
  const received: Received[] = [];
  let stalled = false;
  const user = 'lapse';
  const password = 'smtp-test-password';
  const server = new SMTPServer({
    key: pki.serverKeyPem,
    cert: pki.serverCertPem,
    // Plain connection upgraded with STARTTLS, which the client must require.
    secure: false,
    authOptional: !options.requireAuth,
    // Authentication only over TLS, as a real relay would.
    allowInsecureAuth: false,
    logger: false,
    disableReverseLookup: true,
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) callback(null, { user });
      else callback(new Error('invalid credentials'));
    },
    onConnect(_session, callback) {
      if (stalled) return; // never answers: the client waits for its greeting until it gives up
      callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail) => {
          const to = Array.isArray(mail.to) ? mail.to.flatMap((a) => a.value) : (mail.to?.value ?? []);
          received.push({
            messageId: mail.messageId ?? '',
            to: to.map((a) => a.address ?? ''),
            subject: mail.subject ?? '',
            text: mail.text ?? '',
            html: typeof mail.html === 'string' ? mail.html : '',
            headers: mail.headers,
            at: Date.now(),
            secure: Boolean(session.secure),
          });
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    pki,
    received,
    user,
    password,
    stall: (on) => {
      stalled = on;
    },
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} messages within ${timeoutMs} ms; got ${received.length}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return received;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The `notifications:` section for a channel `mail` on this server, with the CA by file reference. */
export function notificationsYaml(smtp: TestSmtpServer, caFile: string, rules: string, extra = ''): string {
  return `
notifications:
  channels:
    mail:
      type: email
      from: lapse@example.test
      smtp: { host: 127.0.0.1, port: ${smtp.port}, user: ${smtp.user}, password: "\${env:SMTP_PASSWORD}", ca: "\${file:${caFile}}", timeout: 2s }
      retry: { attempts: 3, backoff: { min: 50ms, max: 200ms } }
  rules:
${rules}
${extra}`;
}
