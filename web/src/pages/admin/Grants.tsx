import { Anchor, Badge, Button, Group, Loader, Modal, ScrollArea, Stack, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api, unwrap, type Grant } from '../../api/client';
import { ProblemAlert } from '../../components/ProblemAlert';
import { Status } from '../../components/Status';
import { Countdown, useNow, When } from '../../time';

const allGrants = (status: 'active' | 'revoking' | 'failed') => ({
  queryKey: ['grants', 'all', status],
  queryFn: () => unwrap(api.GET('/api/v1/grants', { params: { query: { scope: 'all', status, limit: 200 } } })),
});

export function ActiveGrantsPanel({ canRevoke }: { canRevoke: boolean }) {
  const grants = useQuery(allGrants('active'));
  const [filter, setFilter] = useState('');
  const [revoking, setRevoking] = useState<Grant | null>(null);
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = (grants.data?.items ?? []).filter((g) => words.every((w) => `${g.principalId} ${g.target} ${g.entitlement}`.toLowerCase().includes(w)));
  return (
    <Stack>
      <TextInput
        label="Filter"
        placeholder="person, target or entitlement"
        value={filter}
        onChange={(e) => setFilter(e.currentTarget.value)}
        maw={400}
        maxLength={200}
      />
      {grants.isPending && <Loader aria-label="Loading grants" />}
      <ProblemAlert error={grants.error} />
      <ScrollArea>
        <Table striped miw={640} aria-label="Active grants">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Who</Table.Th>
              <Table.Th>Access</Table.Th>
              <Table.Th>Left</Table.Th>
              <Table.Th>Since</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {shown.map((g) => (
              <Table.Tr key={g.id}>
                <Table.Td>{g.principalId}</Table.Td>
                <Table.Td>
                  <Anchor component={Link} to={`/requests/${g.requestId}`}>
                    {g.target}/{g.entitlement}
                  </Anchor>{' '}
                  {g.breakGlass && <Badge color="red">break-glass</Badge>}
                </Table.Td>
                <Table.Td>{g.expiresAt && <Countdown until={g.expiresAt} />}</Table.Td>
                <Table.Td>
                  <When at={g.activatedAt} />
                </Table.Td>
                <Table.Td>
                  {canRevoke && (
                    <Button size="compact-sm" color="red" variant="light" onClick={() => setRevoking(g)}>
                      Revoke
                    </Button>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
      {grants.data && shown.length === 0 && <Text c="dimmed">No active grants{filter ? ' match' : ''}.</Text>}
      <RevokeDialog grant={revoking} onClose={() => setRevoking(null)} />
    </Stack>
  );
}

function RevokeDialog({ grant, onClose }: { grant: Grant | null; onClose: () => void }) {
  const queryClient = useQueryClient();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    if (!grant) return;
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/grants/{id}/revoke', { params: { path: { id: grant.id } }, body: { reason: reason.trim() } }));
      await queryClient.invalidateQueries({ queryKey: ['grants'] });
      setReason('');
      onClose();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal opened={grant !== null} onClose={onClose} title={grant ? `Revoke ${grant.principalId}'s ${grant.target}/${grant.entitlement}` : ''}>
      <Stack>
        <Textarea
          label="Reason"
          description="Recorded in the audit log and shown to the holder"
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          maxLength={2000}
          autosize
          minRows={2}
          required
        />
        <ProblemAlert error={error} title="Not revoked" />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button color="red" onClick={submit} loading={busy} disabled={!reason.trim()}>
            Revoke now
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/** Break-glass uses not yet reviewed after the fact, oldest last (a page of 200). */
export function BreakGlassPanel({ canReview }: { canReview: boolean }) {
  const queryClient = useQueryClient();
  const requests = useQuery({
    queryKey: ['requests', 'all', 'awaiting-review'],
    queryFn: () => unwrap(api.GET('/api/v1/requests', { params: { query: { scope: 'all', awaitingReview: 'true', limit: 200 } } })),
  });
  const [error, setError] = useState<unknown>(null);
  const waiting = requests.data?.items ?? [];
  const review = async (id: string) => {
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/break-glass/{id}/review', { params: { path: { id } }, body: { comment: 'reviewed in the portal' } }));
      await queryClient.invalidateQueries({ queryKey: ['requests'] });
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Stack>
      {requests.isPending && <Loader aria-label="Loading break-glass events" />}
      <ProblemAlert error={requests.error ?? error} />
      {requests.data && waiting.length === 0 && <Text c="dimmed">No break-glass access awaits review.</Text>}
      {waiting.map((r) => (
        <Group key={r.id} justify="space-between" wrap="wrap" data-testid={`break-glass-${r.id}`}>
          <Stack gap={0}>
            <Text fw={600}>
              {r.principal.id}: {r.target}/{r.entitlement}
            </Text>
            <Text size="sm">{r.reason}</Text>
            <Text size="sm" c="dimmed">
              <When at={r.createdAt} /> ·{' '}
              <Anchor component={Link} to={`/requests/${r.id}`} size="sm">
                timeline
              </Anchor>
            </Text>
          </Stack>
          {canReview && (
            <Button size="xs" onClick={() => void review(r.id)}>
              Mark reviewed
            </Button>
          )}
        </Group>
      ))}
    </Stack>
  );
}

/** Grants whose removal is late (past expiry, still revoking) or failed. */
export function RevocationsPanel() {
  const revoking = useQuery(allGrants('revoking'));
  const failed = useQuery(allGrants('failed'));
  const now = useNow(10_000);
  const rows = [...(revoking.data?.items ?? []), ...(failed.data?.items ?? [])];
  return (
    <Stack>
      {(revoking.isPending || failed.isPending) && <Loader aria-label="Loading revocations" />}
      <ProblemAlert error={revoking.error ?? failed.error} />
      {revoking.data && failed.data && rows.length === 0 && <Text c="dimmed">Every revocation is on time.</Text>}
      <ScrollArea>
        <Table miw={640} aria-label="Late or failing revocations">
          <Table.Tbody>
            {rows.map((g) => (
              <Table.Tr key={g.id}>
                <Table.Td>
                  <Status value={g.status} />
                  {g.expiresAt && new Date(g.expiresAt).getTime() < now && g.status === 'revoking' && (
                    <Badge color="red" ml={4}>
                      overdue
                    </Badge>
                  )}
                  {g.propagationPending && (
                    <Badge color="yellow" ml={4} title={g.propagationPending}>
                      propagation pending
                    </Badge>
                  )}
                </Table.Td>
                <Table.Td>{g.principalId}</Table.Td>
                <Table.Td>
                  {g.target}/{g.entitlement}
                </Table.Td>
                <Table.Td>
                  expired <When at={g.expiresAt} />
                </Table.Td>
                <Table.Td c="red">{g.lastError}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
    </Stack>
  );
}
