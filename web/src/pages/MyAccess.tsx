import { Anchor, Badge, Button, Card, Group, Loader, Modal, Select, SimpleGrid, Stack, Text, Textarea, TextInput, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api, unwrap, type Grant } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { Status } from '../components/Status';
import { useStepUp } from '../components/StepUp';
import { Countdown, formatDuration, When } from '../time';
import { CredentialsButton } from './Credentials';
import { durationChoices, durationText } from './RequestForm';

/** Grants that hold (or may still hold) access; the statuses are checked against the API's types. */
const LIVE: ReadonlySet<Grant['status']> = new Set<Grant['status']>(['provisioning', 'active', 'revoking']);

/** My grants now (with countdowns, extend, release, credentials) and my recent requests. */
export function MyAccessPage() {
  const grants = useQuery({
    queryKey: ['grants', 'mine'],
    queryFn: () => unwrap(api.GET('/api/v1/grants', { params: { query: { scope: 'mine', limit: 100 } } })),
  });
  const requests = useQuery({
    queryKey: ['requests', 'mine'],
    queryFn: () => unwrap(api.GET('/api/v1/requests', { params: { query: { scope: 'mine', limit: 20 } } })),
  });
  const catalogue = useQuery({ queryKey: ['catalogue'], queryFn: () => unwrap(api.GET('/api/v1/catalogue')) });
  const connectorOf = (target: string) => catalogue.data?.items.find((i) => i.target === target)?.connector;
  const current = (grants.data?.items ?? []).filter((g) => LIVE.has(g.status));

  return (
    <Stack maw={1100}>
      <Title order={2}>My access</Title>
      {grants.isPending && <Loader aria-label="Loading your grants" />}
      <ProblemAlert error={grants.error} />
      {grants.data && current.length === 0 && (
        <Text c="dimmed">
          You hold no access right now.{' '}
          <Anchor component={Link} to="/">
            Request some
          </Anchor>
          .
        </Text>
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        {current.map((grant) => (
          <GrantCard key={grant.id} grant={grant} connector={connectorOf(grant.target)} />
        ))}
      </SimpleGrid>
      <Title order={3}>My recent requests</Title>
      <ProblemAlert error={requests.error} />
      <Stack gap="xs">
        {requests.data?.items.map((r) => (
          <Group key={r.id} gap="sm" wrap="wrap">
            <Status value={r.status} />
            <Anchor component={Link} to={`/requests/${r.id}`}>
              {r.target}/{r.entitlement}
            </Anchor>
            {r.kind !== 'access' && <Badge variant="outline">{r.kind.replace('_', ' ')}</Badge>}
            <Text size="sm" c="dimmed">
              <When at={r.createdAt} />
            </Text>
          </Group>
        ))}
      </Stack>
    </Stack>
  );
}

function GrantCard({ grant, connector }: { grant: Grant; connector: string | undefined }) {
  const [dialog, setDialog] = useState<'extend' | 'release' | null>(null);
  return (
    <Card withBorder data-testid={`grant-${grant.id}`}>
      <Stack gap="xs">
        <Group justify="space-between" wrap="nowrap">
          <Text fw={600}>
            {grant.target}/{grant.entitlement}
          </Text>
          <Status value={grant.status} />
        </Group>
        <Group gap="xs">
          {grant.expiresAt && grant.status === 'active' ? (
            <>
              <Text size="sm">Time left</Text>
              <Countdown until={grant.expiresAt} />
            </>
          ) : (
            <Text size="sm" c="dimmed">
              {grant.status === 'provisioning' ? 'Being set up…' : 'Being removed…'}
            </Text>
          )}
          {grant.breakGlass && <Badge color="red">break-glass</Badge>}
          {grant.extensions > 0 && <Badge variant="outline">extended {grant.extensions}×</Badge>}
        </Group>
        {grant.lastError && (
          <Text size="sm" c="red">
            {grant.lastError}
          </Text>
        )}
        <Group gap="xs">
          <Anchor component={Link} to={`/requests/${grant.requestId}`} size="sm">
            Details
          </Anchor>
          {grant.status === 'active' && (
            <>
              <Button size="xs" variant="light" onClick={() => setDialog('extend')}>
                Extend
              </Button>
              <Button size="xs" variant="light" color="red" onClick={() => setDialog('release')}>
                Release
              </Button>
            </>
          )}
          <CredentialsButton grant={grant} connector={connector} />
        </Group>
      </Stack>
      <ExtendDialog grant={grant} opened={dialog === 'extend'} onClose={() => setDialog(null)} />
      <ReleaseDialog grant={grant} opened={dialog === 'release'} onClose={() => setDialog(null)} />
    </Card>
  );
}

function ExtendDialog({ grant, opened, onClose }: { grant: Grant; opened: boolean; onClose: () => void }) {
  const queryClient = useQueryClient();
  const withStepUp = useStepUp();
  const [duration, setDuration] = useState<string | null>(String(3_600_000));
  const [reason, setReason] = useState('');
  const [ticket, setTicket] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await withStepUp(() =>
        unwrap(
          api.POST('/api/v1/grants/{id}/extend', {
            params: { path: { id: grant.id } },
            body: { duration: durationText(Number(duration)), reason: reason.trim(), ...(ticket ? { ticket } : {}) },
          }),
        ),
      );
      await queryClient.invalidateQueries({ queryKey: ['grants'] });
      await queryClient.invalidateQueries({ queryKey: ['requests'] });
      onClose();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal opened={opened} onClose={onClose} title={`Extend ${grant.target}/${grant.entitlement}`}>
      <Stack>
        <Select
          label="By"
          data={durationChoices(3_600_000, 8 * 3_600_000).map((ms) => ({ value: String(ms), label: formatDuration(ms) }))}
          value={duration}
          onChange={setDuration}
          allowDeselect={false}
          description="The policy's extension limits apply; the server says if this is too long."
        />
        <Textarea label="Reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)} maxLength={2000} autosize minRows={2} required />
        <TextInput label="Ticket (if the policy asks for one)" value={ticket} onChange={(e) => setTicket(e.currentTarget.value.trim())} maxLength={200} />
        <ProblemAlert error={error} title="Not extended" />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button onClick={submit} loading={busy} disabled={!reason.trim()}>
            Extend
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

function ReleaseDialog({ grant, opened, onClose }: { grant: Grant; opened: boolean; onClose: () => void }) {
  const queryClient = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/grants/{id}/release', { params: { path: { id: grant.id } }, body: { reason: 'released from the portal' } }));
      await queryClient.invalidateQueries({ queryKey: ['grants'] });
      onClose();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal opened={opened} onClose={onClose} title="Release access?">
      <Stack>
        <Text size="sm">
          Give up {grant.target}/{grant.entitlement} now{grant.expiresAt ? ' instead of waiting for it to expire' : ''}. You can request it again later.
        </Text>
        <ProblemAlert error={error} title="Not released" />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Keep it
          </Button>
          <Button color="red" onClick={submit} loading={busy}>
            Release now
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
