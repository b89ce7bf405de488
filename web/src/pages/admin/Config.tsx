import { Badge, Button, Code, Group, Loader, ScrollArea, Stack, Table, Text, Title } from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ProblemAlert } from '../../components/ProblemAlert';
import { Status } from '../../components/Status';
import { When } from '../../time';

const who = (s: { users: string[]; groups: string[] }) => [...s.groups.map((g) => `group ${g}`), ...s.users].join(', ') || 'nobody';

const CHECK_COLOURS = { ok: 'green', failed: 'red', pending: 'gray' } as const;

/** The latest target check: can Lapse reach the target with the privileges it needs; if not, what is missing. */
function TargetCheck({ name, check }: { name: string; check: { status: 'ok' | 'failed' | 'pending'; problem: string | null; checkedAt: string | null } }) {
  return (
    <Stack gap={2} data-testid={`target-check-${name}`}>
      <Group gap={6}>
        <Badge color={CHECK_COLOURS[check.status]}>{check.status === 'pending' ? 'not checked yet' : check.status}</Badge>
        {check.checkedAt && (
          <Text size="xs" c="dimmed">
            <When at={check.checkedAt} />
          </Text>
        )}
      </Group>
      {check.problem && (
        <Text size="sm" c="red" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
          {check.problem}
        </Text>
      )}
    </Stack>
  );
}

/** The configuration in force, read-only: it passed validation when loaded, or the server would not run it. */
export function ConfigPanel({ canCheck }: { canCheck: boolean }) {
  const config = useQuery({ queryKey: ['config'], queryFn: () => unwrap(api.GET('/api/v1/config')) });
  const queryClient = useQueryClient();
  const check = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/config/targets/check', { body: {} })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['config'] }),
  });
  if (config.isPending) return <Loader aria-label="Loading the configuration" />;
  if (config.error) return <ProblemAlert error={config.error} />;
  const c = config.data;
  return (
    <Stack>
      <Group gap="xs">
        <Badge color="green">valid, in force</Badge>
        <Text size="sm">
          {c.source} · version <Code>{c.version.slice(0, 12)}</Code>
        </Text>
      </Group>
      <Group justify="space-between">
        <Title order={3}>Targets</Title>
        {canCheck && (
          <Button variant="light" onClick={() => check.mutate()} loading={check.isPending}>
            Check targets now
          </Button>
        )}
      </Group>
      <ProblemAlert error={check.error} title="The checks could not run" />
      <ScrollArea>
        <Table miw={600} aria-label="Targets">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Target</Table.Th>
              <Table.Th>Connector</Table.Th>
              <Table.Th>Entitlements</Table.Th>
              <Table.Th>Settings</Table.Th>
              <Table.Th>Check</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {c.targets.map((t) => (
              <Table.Tr key={t.name}>
                <Table.Td fw={600}>{t.name}</Table.Td>
                <Table.Td>{t.connector}</Table.Td>
                <Table.Td>{t.entitlements.map((e) => e.name).join(', ')}</Table.Td>
                <Table.Td>{t.settingKeys.join(', ') || '—'}</Table.Td>
                <Table.Td maw={420}>
                  <TargetCheck name={t.name} check={t.check} />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
      <Title order={3}>Who may get what</Title>
      <ScrollArea>
        <Table miw={800} aria-label="Policies">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Entitlement</Table.Th>
              <Table.Th>Policy</Table.Th>
              <Table.Th>Who</Table.Th>
              <Table.Th>Duration</Table.Th>
              <Table.Th>Approval</Table.Th>
              <Table.Th>Requires</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {c.policies.map((p) => (
              <Table.Tr key={`${p.entitlement}-${p.policy}`}>
                <Table.Td>{p.entitlement}</Table.Td>
                <Table.Td>{p.policy}</Table.Td>
                <Table.Td>{who(p.subjects)}</Table.Td>
                <Table.Td>
                  {p.defaultDuration} (max {p.maxDuration})
                </Table.Td>
                <Table.Td>{p.approval}</Table.Td>
                <Table.Td>{[...p.requirements, ...(p.conditions ? [`when ${p.conditions}`] : [])].join('; ') || '—'}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
      <Text size="sm">
        Admins: {who(c.roles.admins)} · Auditors: {who(c.roles.auditors)} · Break-glass:{' '}
        {c.breakGlass.enabled ? `${who(c.breakGlass.subjects)} on ${c.breakGlass.entitlements.join(', ')}` : 'disabled'}
      </Text>
    </Stack>
  );
}

/** Reconciliation findings: access on a target that no grant explains (standing), or a grant without its access (missing). */
export function FindingsPanel() {
  const findings = useQuery({ queryKey: ['findings'], queryFn: () => unwrap(api.GET('/api/v1/findings', { params: { query: { limit: 200 } } })) });
  if (findings.isPending) return <Loader aria-label="Loading findings" />;
  if (findings.error) return <ProblemAlert error={findings.error} />;
  const rows = findings.data.findings;
  if (rows.length === 0) return <Text c="dimmed">No findings: every target matches the grants.</Text>;
  return (
    <ScrollArea>
      <Table miw={700} aria-label="Findings">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Status</Table.Th>
            <Table.Th>Kind</Table.Th>
            <Table.Th>Where</Table.Th>
            <Table.Th>Account</Table.Th>
            <Table.Th>First seen</Table.Th>
            <Table.Th>Last seen</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((f) => (
            <Table.Tr key={f.id}>
              <Table.Td>
                <Status value={f.status} />
              </Table.Td>
              <Table.Td>{f.kind}</Table.Td>
              <Table.Td>
                {f.target}/{f.entitlement}
              </Table.Td>
              <Table.Td>
                {f.account} ({f.principalId})
              </Table.Td>
              <Table.Td>
                <When at={f.firstSeenAt} />
              </Table.Td>
              <Table.Td>
                <When at={f.lastSeenAt} />
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </ScrollArea>
  );
}
