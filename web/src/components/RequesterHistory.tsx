import { Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { formatRelative } from '../time';

const WINDOW = '90d';
const LATEST = 3;

/**
 * One or two lines on a review card: how the requester's other requests went over the last 90
 * days, and the latest few. At least one line tall while loading, so cards barely move when it arrives.
 * NB. The summary is the same for every request of one requester (this one included), so it is
 * fetched once per requester, through whichever of their requests asks first.
 */
export function RequesterHistory({ requestId, principalId }: { requestId: string; principalId: string }) {
  const history = useQuery({
    queryKey: ['requests', 'requester-history', principalId],
    queryFn: () =>
      unwrap(api.GET('/api/v1/requests/{id}/requester-history', { params: { path: { id: requestId }, query: { since: WINDOW, limit: LATEST + 1 } } })),
    staleTime: 60_000,
  });
  if (history.isPending) {
    return (
      <Text size="sm" c="dimmed" mih="1.55em">
        Loading {principalId}&apos;s recent requests…
      </Text>
    );
  }
  if (history.isError) {
    return (
      <Text size="sm" c="dimmed" mih="1.55em">
        {principalId}&apos;s history is not available.
      </Text>
    );
  }
  // This request is pending and counted; the card is about the others.
  const counts = { ...history.data.counts, pending: Math.max(0, history.data.counts.pending - 1) };
  const recent = history.data.recent.filter((r) => r.id !== requestId).slice(0, LATEST);
  const total = counts.pending + counts.approved + counts.denied + counts.cancelled + counts.timed_out;
  const parts = (
    [
      [counts.approved, 'approved'],
      [counts.denied, 'denied'],
      [counts.cancelled, 'cancelled'],
      [counts.timed_out, 'timed out'],
      [counts.pending, 'pending'],
    ] as const
  )
    .filter(([n]) => n > 0)
    .map(([n, label]) => `${n} ${label}`);
  const flags = [
    counts.breakGlass > 0 && `${counts.breakGlass} break-glass`,
    counts.revokedByAdmin > 0 && `${counts.revokedByAdmin} revoked by an admin`,
  ].filter(Boolean);
  return (
    <Text size="sm" mih="1.55em" data-testid="requester-history">
      <Text span fw={500}>
        History:
      </Text>{' '}
      {total === 0 ? (
        `no other requests from ${principalId} in the last 90 days.`
      ) : (
        <>
          {principalId} made {total} other request{total === 1 ? '' : 's'} in the last 90 days: {parts.join(', ')}
          {flags.length > 0 && <Text span c="orange.8">{` (${flags.join(', ')})`}</Text>}.{' '}
          <Text span c="dimmed">
            Latest:{' '}
            {recent
              .map(
                (r) =>
                  `${r.target}/${r.entitlement} ${r.kind === 'break_glass' ? 'break-glass' : r.status.replace('_', ' ')}${r.grantEndReason === 'revoked' ? ', revoked' : ''} ${formatRelative(r.createdAt)}`,
              )
              .join('; ')}
          </Text>
        </>
      )}
    </Text>
  );
}
