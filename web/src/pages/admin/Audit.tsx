import { Alert, Anchor, Button, Code, Group, List, ScrollArea, SimpleGrid, Stack, Table, Text, TextInput } from '@mantine/core';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap, type VerifyResult } from '../../api/client';
import { ProblemAlert } from '../../components/ProblemAlert';
import { formatAbsolute } from '../../time';

interface Filter {
  action: string;
  actor: string;
  subject: string;
  since: string;
  until: string;
}

const EMPTY: Filter = { action: '', actor: '', subject: '', since: '24h', until: '' };

const present = (filter: Filter) =>
  Object.fromEntries(
    Object.entries(filter)
      .filter(([, v]) => v.trim() !== '')
      .map(([k, v]) => [k, v.trim()]),
  );

/** Audit search (newest first), export of the same window, and a full verification of the hash chain. */
export function AuditPanel() {
  const [draft, setDraft] = useState<Filter>(EMPTY);
  const [filter, setFilter] = useState<Filter>(EMPTY);
  const events = useInfiniteQuery({
    queryKey: ['audit', filter],
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/v1/audit', { params: { query: { ...present(filter), limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
  });
  const rows = events.data?.pages.flatMap((p) => p.items) ?? [];
  const [verify, setVerify] = useState<{ result?: VerifyResult; error?: unknown; busy: boolean }>({ busy: false });
  const set = (key: keyof Filter) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [key]: e.currentTarget.value });
  const search = (e: FormEvent) => {
    e.preventDefault();
    setFilter(draft);
  };
  const window = new URLSearchParams({
    ...(filter.since.trim() ? { since: filter.since.trim() } : {}),
    ...(filter.until.trim() ? { until: filter.until.trim() } : {}),
  });
  const runVerify = async () => {
    setVerify({ busy: true });
    try {
      setVerify({ busy: false, result: await unwrap(api.POST('/api/v1/audit/verify')) });
    } catch (error) {
      setVerify({ busy: false, error });
    }
  };

  return (
    <Stack>
      <form onSubmit={search} aria-label="Audit search">
        <SimpleGrid cols={{ base: 1, xs: 2, md: 5 }}>
          <TextInput label="Action" placeholder="grant.* or request.created" value={draft.action} onChange={set('action')} maxLength={100} />
          <TextInput label="Actor" value={draft.actor} onChange={set('actor')} maxLength={256} />
          <TextInput label="Subject" placeholder="req_… or grt_…" value={draft.subject} onChange={set('subject')} maxLength={64} />
          <TextInput label="Since" placeholder="24h or an ISO time" value={draft.since} onChange={set('since')} maxLength={40} />
          <TextInput label="Until" value={draft.until} onChange={set('until')} maxLength={40} />
        </SimpleGrid>
        <Group mt="sm">
          <Button type="submit">Search</Button>
          <Anchor href={`/api/v1/audit/export?${new URLSearchParams({ format: 'csv', ...Object.fromEntries(window) })}`} download>
            Export CSV
          </Anchor>
          <Anchor href={`/api/v1/audit/export?${new URLSearchParams({ format: 'jsonl', ...Object.fromEntries(window) })}`} download>
            Export JSON lines
          </Anchor>
          <Button variant="light" onClick={runVerify} loading={verify.busy}>
            Verify chain
          </Button>
        </Group>
      </form>
      {verify.result && (
        <Alert color={verify.result.ok ? 'green' : 'red'} title={verify.result.ok ? 'Audit chain intact' : 'Audit chain BROKEN'} role="status">
          {verify.result.events.toLocaleString()} events, {verify.result.checkpoints} checkpoints
          {verify.result.lastCheckpoint ? `, last at seq ${verify.result.lastCheckpoint.seq}` : ''}.
          {!verify.result.checkpointKeyKnown && verify.result.checkpoints > 0 && ' Checkpoint signatures not checked: the server has no checkpoint public key.'}
          {verify.result.problems.length > 0 && (
            <List size="sm">
              {verify.result.problems.slice(0, 20).map((p) => (
                <List.Item key={`${p.seq}-${p.kind}`}>
                  seq {p.seq}: {p.kind}: {p.message}
                </List.Item>
              ))}
            </List>
          )}
        </Alert>
      )}
      <ProblemAlert error={verify.error ?? events.error} />
      <ScrollArea>
        <Table striped miw={800} aria-label="Audit events">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>#</Table.Th>
              <Table.Th>When</Table.Th>
              <Table.Th>Action</Table.Th>
              <Table.Th>Actor</Table.Th>
              <Table.Th>Subject</Table.Th>
              <Table.Th>Data</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((e) => (
              <Table.Tr key={e.id}>
                <Table.Td>{e.seq}</Table.Td>
                <Table.Td>
                  <time dateTime={e.at}>{formatAbsolute(e.at)}</time>
                </Table.Td>
                <Table.Td>{e.action}</Table.Td>
                <Table.Td>{e.actor}</Table.Td>
                <Table.Td>{e.subject}</Table.Td>
                <Table.Td>
                  <Code style={{ wordBreak: 'break-all', whiteSpace: 'pre-wrap' }}>{e.data ? JSON.stringify(e.data).slice(0, 300) : ''}</Code>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
      {events.data && rows.length === 0 && <Text c="dimmed">No events match.</Text>}
      {events.hasNextPage && (
        <Group>
          <Button variant="default" onClick={() => void events.fetchNextPage()} loading={events.isFetchingNextPage}>
            Older events
          </Button>
        </Group>
      )}
    </Stack>
  );
}
