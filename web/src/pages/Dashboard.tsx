import '@mantine/charts/styles.css';
import { AreaChart, BarChart } from '@mantine/charts';
import { Card, Group, Loader, SegmentedControl, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap, type Ok } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { formatDuration } from '../time';

type Stats = Ok<'/api/v1/stats', 'get'>;

const SPANS = [
  { value: '24h', label: '24 hours' },
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
] as const;
type Span = (typeof SPANS)[number]['value'];

const OUTCOMES = ['approved', 'pending', 'denied', 'cancelled', 'timed_out'] as const;

const hourLabel = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** The chart's x labels: times of day for hourly points, dates for daily ones (viewer's time zone). */
function series(stats: Stats | undefined) {
  if (!stats) return [];
  const label = stats.stepMs < 86_400_000 ? hourLabel : dayLabel;
  return stats.activeOverTime.map((point) => ({ at: label.format(new Date(point.at)), active: point.active }));
}

/**
 * Figures over a window (GET /api/v1/stats): the server computes them over every request and
 * grant in it, everyone's for admins and auditors, the viewer's own for anyone else. Refreshed
 * every minute rather than on each live event: a window of figures need not move by the second.
 */
export function DashboardPage() {
  const [since, setSince] = useState<Span>('24h');
  const stats = useQuery({
    queryKey: ['stats', since],
    queryFn: () => unwrap(api.GET('/api/v1/stats', { params: { query: { since } } })),
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });
  const data = stats.data;
  const span = SPANS.find((w) => w.value === since)!;
  const overdue = data?.overdueRevocations ?? null;
  const byOutcome = OUTCOMES.map((status) => ({ status: status.replace('_', ' '), requests: data?.requestsByOutcome[status] ?? 0 }));

  return (
    <Stack maw={1100}>
      <Group justify="space-between" align="end">
        <div>
          <Title order={2}>Dashboard</Title>
          <Text size="sm" c="dimmed">
            {data ? (data.scope === 'all' ? "Everyone's requests and grants" : 'Your requests and grants') : 'Requests and grants'}, last {span.label}.
          </Text>
        </div>
        <SegmentedControl
          aria-label="Window"
          value={since}
          onChange={(value) => setSince(value as Span)}
          data={SPANS.map((w) => ({ value: w.value, label: w.label }))}
        />
      </Group>
      {stats.isPending && <Loader aria-label="Loading" />}
      <ProblemAlert error={stats.error} />
      <SimpleGrid cols={{ base: 1, sm: overdue === null ? 2 : 3 }}>
        <Card withBorder>
          <Text size="sm" c="dimmed">
            Active grants now
          </Text>
          <Text fz={28} fw={700} data-testid="active-now">
            {data ? (data.activeOverTime.at(-1)?.active ?? 0) : '…'}
          </Text>
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">
            Median time to approve
          </Text>
          <Text fz={28} fw={700} data-testid="median-time-to-approve">
            {!data ? '…' : data.medianTimeToApproveMs === null ? '—' : formatDuration(Math.max(data.medianTimeToApproveMs, 60_000))}
          </Text>
          <Text size="xs" c="dimmed">
            {data ? `over ${data.approvalsByPeople} approval${data.approvalsByPeople === 1 ? '' : 's'} by people` : '\u00a0'}
          </Text>
        </Card>
        {overdue !== null && (
          <Card withBorder>
            <Text size="sm" c="dimmed">
              Overdue revocations
            </Text>
            <Text fz={28} fw={700} c={overdue > 0 ? 'red' : undefined} data-testid="overdue-revocations">
              {overdue}
            </Text>
            <Text size="xs" c="dimmed">
              access that should be gone, now
            </Text>
          </Card>
        )}
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Card withBorder>
          <Title order={3} size="h5" mb="sm">
            Active grants, last {span.label}
          </Title>
          <AreaChart
            h={220}
            data={series(data)}
            dataKey="at"
            series={[{ name: 'active', color: 'blue.6', label: 'Active grants' }]}
            curveType="step"
            withDots={false}
            tickLine="none"
            yAxisProps={{ allowDecimals: false }}
            aria-label={`Active grants ${data && data.stepMs < 86_400_000 ? 'per hour' : 'per day'} over the last ${span.label}`}
          />
        </Card>
        <Card withBorder>
          <Title order={3} size="h5" mb="sm">
            Requests by outcome
          </Title>
          <BarChart
            h={220}
            data={byOutcome}
            dataKey="status"
            series={[{ name: 'requests', color: 'teal.6', label: 'Requests' }]}
            tickLine="none"
            yAxisProps={{ allowDecimals: false }}
            aria-label={`Requests made in the last ${span.label}, by outcome`}
          />
        </Card>
      </SimpleGrid>
    </Stack>
  );
}
