/**
 * The SMTP server of the notification bench, in a process of its own (as a real relay is): the
 * test server (STARTTLS, every message parsed with mailparser) started on a free port. It tells
 * the parent its port and CA, then each message's Message-ID and arrival time (wall clock, which
 * both processes share) in batches; the parent can stall it or close it.
 */
import { startSmtpServer } from '../test/support/smtp.js';

const smtp = await startSmtpServer();
const send = (message: unknown) => process.send?.(message);
send({ ready: { port: smtp.port, caPem: smtp.pki.caPem } });
let reported = 0;
const flush = () => {
  if (smtp.received.length === reported) return;
  const fresh = smtp.received.slice(reported).map((m) => ({ messageId: m.messageId, at: m.at }));
  reported += fresh.length;
  send({ received: fresh });
};
const timer = setInterval(flush, 10);
process.on('message', (message: { stall?: boolean; close?: boolean }) => {
  if (message.stall !== undefined) smtp.stall(message.stall);
  if (message.close) {
    clearInterval(timer);
    flush();
    void smtp.close().then(() => process.exit(0));
    // A stalled server keeps its sessions open; do not wait for them.
    setTimeout(() => process.exit(0), 1_000).unref();
  }
});
process.on('disconnect', () => process.exit(0));
