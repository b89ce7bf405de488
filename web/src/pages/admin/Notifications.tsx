import { Badge, Group, Loader, ScrollArea, SegmentedControl, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../../api/client';
import { ProblemAlert } from '../../components/ProblemAlert';
import { When } from '../../time';

const STATUS_COLOURS: Record<string, string> = { pending: 'yellow', sent: 'green', failed: 'red', skipped: 'gray' };

function StatusBadge({ status }: { status: string }) {
  return <Badge color={STATUS_COLOURS[status] ?? 'gray'}>{status}</Badge>;
}

/** The channels in force (names and types only: settings and secrets stay on the server). */
function Channels() {
  const channels = useQuery({ queryKey: ['notification-channels'], queryFn: () => unwrap(api.GET('/api/v1/notifications/channels')) });
  if (channels.isPending) return <Loader aria-label="Loading the channels" />;
  if (channels.error) return <ProblemAlert error={channels.error} />;
  const { channels: list, rules } = channels.data;
  return (
    <Stack gap="xs">
      <Title order={3}>Channels</Title>
      {list.length === 0 ? (
        <Text c="dimmed">No channels: add them under notifications.channels in lapse.yaml (docs/notifications.md).</Text>
      ) : (
        <Table aria-label="Notification channels" maw={600}>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Channel</Table.Th>
              <Table.Th>Type</Table.Th>
              <Table.Th>Attempts</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {list.map((c) => (
              <Table.Tr key={c.name}>
                <Table.Td fw={600}>{c.name}</Table.Td>
                <Table.Td>{c.type}</Table.Td>
                <Table.Td>{c.retryAttempts}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Text size="sm" c="dimmed">
        {rules} routing rule{rules === 1 ? '' : 's'} in force.
      </Text>
    </Stack>
  );
}

/** The latest deliveries, or only the failed ones, with the reason of the last attempt. */
function Deliveries() {
  const [status, setStatus] = useState<'all' | 'failed' | 'pending'>('all');
  const deliveries = useQuery({
    queryKey: ['notification-deliveries', status],
    queryFn: () => unwrap(api.GET('/api/v1/notifications/deliveries', { params: { query: { limit: 50, ...(status === 'all' ? {} : { status }) } } })),
    refetchInterval: 10_000,
  });
  return (
    <Stack gap="xs">
      <Group justify="space-between">
        <Title order={3}>Last deliveries</Title>
        <SegmentedControl
          aria-label="Which deliveries"
          value={status}
          onChange={(value) => setStatus(value as typeof status)}
          data={[
            { value: 'all', label: 'All' },
            { value: 'failed', label: 'Failed' },
            { value: 'pending', label: 'Pending' },
          ]}
        />
      </Group>
      {deliveries.isPending ? (
        <Loader aria-label="Loading the deliveries" />
      ) : deliveries.error ? (
        <ProblemAlert error={deliveries.error} />
      ) : deliveries.data.deliveries.length === 0 ? (
        <Text c="dimmed">No deliveries{status === 'all' ? '' : ` ${status}`}.</Text>
      ) : (
        <ScrollArea>
          <Table miw={800} aria-label="Notification deliveries">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>When</Table.Th>
                <Table.Th>Event</Table.Th>
                <Table.Th>Channel</Table.Th>
                <Table.Th>To</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Attempts</Table.Th>
                <Table.Th>Last error</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {deliveries.data.deliveries.map((d) => (
                <Table.Tr key={d.id}>
                  <Table.Td>
                    <When at={d.createdAt} />
                  </Table.Td>
                  <Table.Td>{d.event}</Table.Td>
                  <Table.Td>{d.channel}</Table.Td>
                  <Table.Td>{d.recipient}</Table.Td>
                  <Table.Td>
                    <StatusBadge status={d.status} />
                  </Table.Td>
                  <Table.Td>{d.attempts}</Table.Td>
                  <Table.Td maw={360} style={{ overflowWrap: 'anywhere' }}>
                    {d.lastError ?? ''}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </ScrollArea>
      )}
    </Stack>
  );
}

/** Event webhook subscriptions (managed with `lapse webhook` or the API; secrets are never shown again). */
function Webhooks() {
  const webhooks = useQuery({ queryKey: ['webhooks'], queryFn: () => unwrap(api.GET('/api/v1/webhooks')) });
  if (webhooks.isPending) return <Loader aria-label="Loading the webhooks" />;
  if (webhooks.error) return <ProblemAlert error={webhooks.error} />;
  const list = webhooks.data.webhooks;
  return (
    <Stack gap="xs">
      <Title order={3}>Event webhooks</Title>
      {list.length === 0 ? (
        <Text c="dimmed">No webhook subscriptions. Add one with `lapse webhook add &lt;url&gt;`; its signing secret is shown once, there.</Text>
      ) : (
        <ScrollArea>
          <Table miw={700} aria-label="Webhook subscriptions">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Id</Table.Th>
                <Table.Th>URL</Table.Th>
                <Table.Th>Events</Table.Th>
                <Table.Th>Added</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {list.map((w) => (
                <Table.Tr key={w.id}>
                  <Table.Td>{w.id}</Table.Td>
                  <Table.Td style={{ overflowWrap: 'anywhere' }}>
                    {w.url}
                    {w.allowInsecureHttp && (
                      <Badge ml="xs" color="orange">
                        plain http
                      </Badge>
                    )}
                    {w.description && (
                      <Text size="xs" c="dimmed">
                        {w.description}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>{w.events.length === 0 ? 'all' : w.events.join(', ')}</Table.Td>
                  <Table.Td>
                    {w.createdBy}, <When at={w.createdAt} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </ScrollArea>
      )}
    </Stack>
  );
}

/** Admins: where notifications go, what was sent and what failed, and who receives event webhooks. */
export function NotificationsPanel() {
  return (
    <Stack gap="xl">
      <Channels />
      <Deliveries />
      <Webhooks />
    </Stack>
  );
}
