import '@mantine/charts/styles.css';
import { AreaChart, BarChart } from '@mantine/charts';
import { Card, Loader, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import { api, unwrap, type AccessRequest, type Grant } from '../api/client';
import { useSession } from '../api/session';
import { ProblemAlert } from '../components/ProblemAlert';
import { formatDuration } from '../time';

const HOURS = 24;

/** Active grants at hourly points over the last 24 hours, the last one being now. */
export function activeOverTime(grants: readonly Grant[], now: number) {
  return Array.from({ length: HOURS + 1 }, (_, i) => {
    const at = now - (HOURS - i) * 3_600_000;
    const active = grants.filter((g) => {
      if (!g.activatedAt || Date.parse(g.activatedAt) > at) return false;
      const end = g.endedAt ?? (g.status === 'active' ? null : g.expiresAt);
      return end === null || Date.parse(end) > at;
    }).length;
    return { hour: new Date(at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }), active };
  });
}

export function outcomes(requests: readonly AccessRequest[]) {
  const counts = new Map<string, number>();
  for (const r of requests) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  return ['approved', 'pending', 'denied', 'cancelled', 'timed_out'].map((status) => ({ status: status.replace('_', ' '), requests: counts.get(status) ?? 0 }));
}

/** Median time from asking to the decision, over requests a person approved (auto-approvals excluded). */
export function medianTimeToApprove(requests: readonly AccessRequest[]): number | null {
  const waits = requests
    .filter((r) => r.status === 'approved' && r.stages.length > 0 && r.decidedAt)
    .map((r) => Date.parse(r.decidedAt!) - Date.parse(r.createdAt))
    .sort((a, b) => a - b);
  if (waits.length === 0) return null;
  const mid = Math.floor(waits.length / 2);
  return waits.length % 2 ? waits[mid]! : (waits[mid - 1]! + waits[mid]!) / 2;
}

/** A picture of the last day: over the 200 most recent requests and grants the viewer can see. */
export function DashboardPage() {
  const { readsEverything } = useSession();
  const scope = readsEverything ? 'all' : 'mine';
  const requests = useQuery({ queryKey: ['requests', scope, 'dashboard'], queryFn: () => unwrap(api.GET('/api/v1/requests', { params: { query: { scope, limit: 200 } } })) });
  const grants = useQuery({ queryKey: ['grants', scope, 'dashboard'], queryFn: () => unwrap(api.GET('/api/v1/grants', { params: { query: { scope, limit: 200 } } })) });
  const overdue = useQuery({
    queryKey: ['grants', 'all', 'revoking'],
    queryFn: () => unwrap(api.GET('/api/v1/grants', { params: { query: { scope: 'all', status: 'revoking', limit: 200 } } })),
    enabled: readsEverything,
  });
  const series = useMemo(() => activeOverTime(grants.data?.items ?? [], Date.now()), [grants.data]);
  const byOutcome = useMemo(() => outcomes(requests.data?.items ?? []), [requests.data]);
  const median = medianTimeToApprove(requests.data?.items ?? []);
  const overdueCount = (overdue.data?.items ?? []).filter((g) => g.expiresAt && Date.parse(g.expiresAt) < Date.now()).length;

  return (
    <Stack maw={1100}>
      <Title order={2}>Dashboard</Title>
      <Text size="sm" c="dimmed">
        {readsEverything ? 'Everyone' : 'You'}: the 200 most recent requests and grants.
      </Text>
      {(requests.isPending || grants.isPending) && <Loader aria-label="Loading" />}
      <ProblemAlert error={requests.error ?? grants.error} />
      <SimpleGrid cols={{ base: 1, sm: readsEverything ? 3 : 2 }}>
        <Card withBorder>
          <Text size="sm" c="dimmed">
            Active grants now
          </Text>
          <Text fz={28} fw={700} data-testid="active-now">
            {grants.data ? grants.data.items.filter((g) => g.status === 'active').length : '…'}
          </Text>
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">
            Median time to approve
          </Text>
          <Text fz={28} fw={700}>
            {median === null ? '—' : formatDuration(Math.max(median, 60_000))}
          </Text>
        </Card>
        {readsEverything && (
          <Card withBorder>
            <Text size="sm" c="dimmed">
              Overdue revocations
            </Text>
            <Text fz={28} fw={700} c={overdueCount > 0 ? 'red' : undefined}>
              {overdue.data ? overdueCount : '…'}
            </Text>
          </Card>
        )}
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Card withBorder>
          <Title order={3} size="h5" mb="sm">
            Active grants, last 24 hours
          </Title>
          <AreaChart h={220} data={series} dataKey="hour" series={[{ name: 'active', color: 'blue.6', label: 'Active grants' }]} curveType="step" withDots={false} tickLine="none" yAxisProps={{ allowDecimals: false }} aria-label="Active grants per hour over the last 24 hours" />
        </Card>
        <Card withBorder>
          <Title order={3} size="h5" mb="sm">
            Requests by outcome
          </Title>
          <BarChart h={220} data={byOutcome} dataKey="status" series={[{ name: 'requests', color: 'teal.6', label: 'Requests' }]} tickLine="none" yAxisProps={{ allowDecimals: false }} aria-label="Requests by outcome" />
        </Card>
      </SimpleGrid>
    </Stack>
  );
}
