import { Anchor, Badge, Button, Card, Group, Loader, Stack, Table, Text, Timeline, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { api, unwrap } from '../api/client';
import { useSession } from '../api/session';
import { isNotFound, ProblemAlert } from '../components/ProblemAlert';
import { approvalPreview, Status } from '../components/Status';
import { Countdown, formatAbsolute, formatDuration, When } from '../time';

/** One request: its terms, decision, grant, and a timeline of everything that happened to it. */
export function RequestDetailPage() {
  const { id = '' } = useParams();
  const { session } = useSession();
  const queryClient = useQueryClient();
  const detail = useQuery({ queryKey: ['request', id], queryFn: () => unwrap(api.GET('/api/v1/requests/{id}', { params: { path: { id } } })), retry: false });
  const [error, setError] = useState<unknown>(null);

  if (detail.isPending) return <Loader aria-label="Loading the request" />;
  if (isNotFound(detail.error) || (detail.error && !/^req_[0-9a-z]+$/.test(id))) {
    return (
      <Stack>
        <Title order={2}>Request not found</Title>
        <Text>There is no request {id} that you can see.</Text>
        <Anchor component={Link} to="/access">
          Back to my access
        </Anchor>
      </Stack>
    );
  }
  if (detail.error) return <ProblemAlert error={detail.error} />;
  const { request, grant, reviews, timeline } = detail.data;
  const mine = request.principal.id === session?.principal.id;

  const cancel = async () => {
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/requests/{id}/cancel', { params: { path: { id } } }));
      await queryClient.invalidateQueries({ queryKey: ['request', id] });
    } catch (e) {
      setError(e);
    }
  };

  return (
    <Stack maw={900}>
      <Group justify="space-between">
        <Title order={2}>
          {request.target}/{request.entitlement}
        </Title>
        <Status value={request.status} />
      </Group>
      <Card withBorder>
        <Table variant="vertical" layout="fixed">
          <Table.Tbody>
            <Table.Tr>
              <Table.Th w={150}>Requested by</Table.Th>
              <Table.Td>{request.principal.id}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th>Kind</Table.Th>
              <Table.Td>{request.kind.replace('_', ' ')}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th>Duration</Table.Th>
              <Table.Td>{formatDuration(request.durationMs)}</Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th>Reason</Table.Th>
              <Table.Td style={{ wordBreak: 'break-word' }}>{request.reason}</Table.Td>
            </Table.Tr>
            {request.ticket && (
              <Table.Tr>
                <Table.Th>Ticket</Table.Th>
                <Table.Td>{request.ticket}</Table.Td>
              </Table.Tr>
            )}
            <Table.Tr>
              <Table.Th>Policy</Table.Th>
              <Table.Td>
                {request.policy ?? '—'} · {approvalPreview({ autoApprove: request.stages.length === 0, stages: request.stages })}
                {request.reasons.length > 0 && (
                  <Text size="sm" c="dimmed">
                    {request.reasons.join('; ')}
                  </Text>
                )}
              </Table.Td>
            </Table.Tr>
            <Table.Tr>
              <Table.Th>Asked</Table.Th>
              <Table.Td>
                <When at={request.createdAt} />
              </Table.Td>
            </Table.Tr>
            {grant && (
              <Table.Tr>
                <Table.Th>Grant</Table.Th>
                <Table.Td>
                  <Group gap="xs">
                    <Status value={grant.status} />
                    {grant.status === 'active' && grant.expiresAt && (
                      <>
                        <Countdown until={grant.expiresAt} /> left
                      </>
                    )}
                    {grant.breakGlass && <Badge color="red">break-glass</Badge>}
                    {grant.endReason && <Text size="sm">ended: {grant.endReason}</Text>}
                  </Group>
                </Table.Td>
              </Table.Tr>
            )}
          </Table.Tbody>
        </Table>
        {mine && request.status === 'pending' && (
          <Group mt="sm">
            <Button variant="light" color="red" onClick={cancel}>
              Cancel request
            </Button>
          </Group>
        )}
        <ProblemAlert error={error} />
      </Card>
      {reviews.length > 0 && (
        <>
          <Title order={3}>Reviews</Title>
          {reviews.map((r) => (
            <Text key={r.id} size="sm">
              <Badge color={r.decision === 'approve' ? 'green' : 'red'} variant="light">
                {r.decision}
              </Badge>{' '}
              {r.reviewerId} (stage {r.stage + 1}) <When at={r.createdAt} />
              {r.comment && `: “${r.comment}”`}
            </Text>
          ))}
        </>
      )}
      <Title order={3}>Timeline</Title>
      <Timeline bulletSize={14} lineWidth={2} active={timeline.length}>
        {timeline.map((event) => (
          <Timeline.Item key={event.id} title={event.action}>
            <Text size="sm">
              by {event.actor} · <time dateTime={event.at}>{formatAbsolute(event.at)}</time> (<When at={event.at} />)
            </Text>
          </Timeline.Item>
        ))}
      </Timeline>
    </Stack>
  );
}
