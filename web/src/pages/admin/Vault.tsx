import { Anchor, Badge, Loader, ScrollArea, Stack, Table, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, unwrap, type Ok } from '../../api/client';
import { ProblemAlert } from '../../components/ProblemAlert';
import { useNow, When } from '../../time';

type VaultAccount = Ok<'/api/v1/vault/accounts', 'get'>['accounts'][number];

const vaultAccounts = {
  queryKey: ['vault', 'accounts'],
  queryFn: () => unwrap(api.GET('/api/v1/vault/accounts')),
};

/** What needs attention first: a rotation overdue (a past holder may know the password), then due, then checked out. */
function state(account: VaultAccount, now: number): { label: string; color: string; detail?: string } {
  if (account.rotationOverdueSince) {
    return { label: 'rotation overdue', color: 'red', detail: `${account.rotationFailures} failed attempts: ${account.lastError ?? ''}` };
  }
  if (account.status === 'checked_out') return { label: `checked out by ${account.holderPrincipalId ?? account.holderGrantId ?? 'someone'}`, color: 'blue' };
  if (account.status === 'rotating') return { label: 'rotating', color: 'yellow' };
  if (account.nextRotationAt && new Date(account.nextRotationAt).getTime() <= now) return { label: 'rotation due', color: 'yellow' };
  return { label: 'ready', color: 'green' };
}

/**
 * Admins and auditors: each vaulted account, its state, who holds it, when it was last rotated and
 * when it is next. Never a password. Checking out is an ordinary request (the catalogue page).
 */
export function VaultPanel() {
  const accounts = useQuery(vaultAccounts);
  const now = useNow(10_000);
  const rows = accounts.data?.accounts ?? [];
  return (
    <Stack>
      {accounts.isPending && <Loader aria-label="Loading vault accounts" />}
      <ProblemAlert error={accounts.error} />
      {accounts.data && rows.length === 0 && <Text c="dimmed">The vault holds no accounts yet (an admin onboards them: lapse vault onboard).</Text>}
      <ScrollArea>
        <Table striped miw={720} aria-label="Vault accounts">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Account</Table.Th>
              <Table.Th>State</Table.Th>
              <Table.Th>Last rotated</Table.Th>
              <Table.Th>Next rotation</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((a) => {
              const s = state(a, now);
              return (
                <Table.Tr key={a.id} data-testid={`vault-${a.target}/${a.account}`}>
                  <Table.Td>
                    {a.target}/{a.account}
                  </Table.Td>
                  <Table.Td>
                    <Badge color={s.color}>{s.label}</Badge>
                    {a.status === 'checked_out' && a.holderGrantId && (
                      <Anchor component={Link} to={`/admin/grants`} ml={6} size="sm">
                        {a.holderGrantId}
                      </Anchor>
                    )}
                    {s.detail && (
                      <Text size="sm" c="red">
                        {s.detail}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>{a.rotatedAt ? <When at={a.rotatedAt} /> : 'never'}</Table.Td>
                  <Table.Td>
                    {a.status === 'checked_out' ? 'at check-in' : a.nextRotationAt ? <When at={a.nextRotationAt} /> : 'after the next check-out'}
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      </ScrollArea>
    </Stack>
  );
}
