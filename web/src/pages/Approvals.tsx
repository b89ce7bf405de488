import { Anchor, Badge, Button, Card, Group, Loader, Stack, Text, Textarea, Title } from '@mantine/core';
import { useInfiniteQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api, unwrap, type AccessRequest } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { RequesterHistory } from '../components/RequesterHistory';
import { useStepUp } from '../components/StepUp';
import { formatDuration, When } from '../time';

const PAGE = 20;

/** Requests I may decide now; the list follows other approvers' decisions live. */
export function ApprovalsPage() {
  // NB. A page at a time: an inbox can hold thousands, and each card is a small form.
  const inbox = useInfiniteQuery({
    queryKey: ['requests', 'review'],
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/v1/requests', { params: { query: { scope: 'review', limit: PAGE, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
  });
  const items = inbox.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <Stack maw={900}>
      <Title order={2}>Approvals</Title>
      {inbox.isPending && <Loader aria-label="Loading requests to review" />}
      <ProblemAlert error={inbox.error} />
      {inbox.data && items.length === 0 && <Text c="dimmed">Nothing waits for you.</Text>}
      {items.map((request) => (
        <ReviewCard key={request.id} request={request} />
      ))}
      {inbox.hasNextPage && (
        <Button variant="default" onClick={() => void inbox.fetchNextPage()} loading={inbox.isFetchingNextPage}>
          Show more
        </Button>
      )}
    </Stack>
  );
}

export function ReviewCard({ request }: { request: AccessRequest }) {
  const queryClient = useQueryClient();
  const withStepUp = useStepUp();
  const [comment, setComment] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<'approve' | 'deny' | null>(null);
  const stage = request.stages[request.currentStage];

  const decide = async (decision: 'approve' | 'deny') => {
    setBusy(decision);
    setError(null);
    try {
      await withStepUp(() =>
        unwrap(
          api.POST('/api/v1/requests/{id}/reviews', {
            params: { path: { id: request.id } },
            body: { decision, ...(comment.trim() ? { comment: comment.trim() } : {}) },
          }),
        ),
      );
      await queryClient.invalidateQueries({ queryKey: ['requests'] });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  return (
    <Card withBorder data-testid={`review-${request.id}`}>
      <Stack gap="xs">
        <Group justify="space-between" wrap="wrap">
          <Text fw={600}>
            {request.principal.id} wants {request.target}/{request.entitlement} for {formatDuration(request.durationMs)}
          </Text>
          {request.kind !== 'access' && <Badge>{request.kind.replace('_', ' ')}</Badge>}
        </Group>
        <Text size="sm">
          <Text span fw={500}>
            Reason:
          </Text>{' '}
          {request.reason}
        </Text>
        {request.ticket && <Text size="sm">Ticket: {request.ticket}</Text>}
        <RequesterHistory requestId={request.id} principalId={request.principal.id} />
        <Text size="sm" c="dimmed">
          Asked <When at={request.createdAt} />
          {request.pendingUntil && (
            <>
              {' '}
              · times out <When at={request.pendingUntil} />
            </>
          )}
          {stage && ` · stage ${request.currentStage + 1} of ${request.stages.length}: ${stage.name} (${stage.quorum} needed)`} · groups:{' '}
          {request.principal.groups.join(', ') || 'none'}
        </Text>
        {request.reasons.length > 0 && (
          <Text size="sm" c="dimmed">
            Policy {request.policy}: {request.reasons.join('; ')}
          </Text>
        )}
        <Textarea
          label="Comment"
          placeholder="Optional; shown in the request's history"
          value={comment}
          onChange={(e) => setComment(e.currentTarget.value)}
          maxLength={2000}
          autosize
          minRows={1}
        />
        <ProblemAlert error={error} title="Not recorded" />
        <Group gap="xs">
          <Button color="green" onClick={() => decide('approve')} loading={busy === 'approve'} disabled={busy !== null}>
            Approve
          </Button>
          <Button color="red" variant="light" onClick={() => decide('deny')} loading={busy === 'deny'} disabled={busy !== null}>
            Deny
          </Button>
          <Anchor component={Link} to={`/requests/${request.id}`} size="sm">
            Details and history
          </Anchor>
        </Group>
      </Stack>
    </Card>
  );
}
