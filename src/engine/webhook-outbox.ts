import { WEBHOOK_EVENTS } from '../domain/event-webhooks.js';
import { newId } from '../domain/ids.js';
import type { NotificationEvent } from '../domain/notifications.js';
import { eventWebhookBody } from '../notify/index.js';
import { insertWebhookDeliveries, listWebhookSubscriptions, scheduleJobsNow, type NewWebhookDelivery } from '../store/index.js';
import type { EngineContext, UnitOfWork } from './context.js';
import { factsOf, readSubjects } from './notification-outbox.js';

const SENT: ReadonlySet<string> = new Set(WEBHOOK_EVENTS);

/**
 * The outbox of event webhooks: each event becomes one delivery per subscription that wants it, in
 * the transaction of the change, with its `webhook` job. The body is built here, once, so every
 * attempt and every replay sends the same bytes. Returns how many deliveries were written.
 */
export async function enqueueWebhookEvents(context: EngineContext, unit: UnitOfWork, events: readonly NotificationEvent[]): Promise<number> {
  const wanted = events.filter((event) => SENT.has(event.name));
  if (wanted.length === 0) return 0;
  const subscriptions = await listWebhookSubscriptions(unit.tx);
  if (subscriptions.length === 0) return 0;
  const deliveries: NewWebhookDelivery[] = [];
  const seen = new Set<string>();
  const subjects = await readSubjects(unit, wanted);
  for (const event of wanted) {
    const takers = subscriptions.filter((s) => s.events.length === 0 || s.events.includes(event.name));
    if (takers.length === 0) continue;
    const facts = factsOf(context, unit, subjects, event);
    if (!facts) continue;
    const body = eventWebhookBody({ type: event.name, timestamp: unit.now, data: { ...facts.payload, actor: event.actor } });
    for (const subscription of takers) {
      const dedupeKey = `${event.name}:${facts.occurrence}`;
      if (seen.has(`${subscription.id}:${dedupeKey}`)) continue;
      seen.add(`${subscription.id}:${dedupeKey}`);
      deliveries.push({ id: newId('webhookDelivery'), subscriptionId: subscription.id, dedupeKey, event: event.name, subjectId: event.subject, body });
    }
  }
  const written = await insertWebhookDeliveries(unit.tx, deliveries, unit.now);
  await scheduleJobsNow(unit.tx, 'webhook', written);
  if (written.length > 0) unit.wake();
  return written.length;
}
