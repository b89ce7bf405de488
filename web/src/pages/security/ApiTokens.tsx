import {
  Alert,
  Badge,
  Button,
  Card,
  Checkbox,
  Code,
  CopyButton,
  Group,
  Modal,
  ScrollArea,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
  VisuallyHidden,
} from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap, type ApiToken, type IssuedToken } from '../../api/client';
import { useSession } from '../../api/session';
import { ProblemAlert } from '../../components/ProblemAlert';
import { When } from '../../time';

type Scope = ApiToken['scopes'][number];
const SCOPES: readonly { value: Scope; label: string }[] = [
  { value: 'read', label: 'read: see requests, grants and the catalogue' },
  { value: 'request', label: 'request: ask for access, extend and release' },
  { value: 'approve', label: 'approve: decide on requests' },
  { value: 'admin', label: 'admin: everything an admin may do' },
];
const EXPIRIES = [
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
  { value: '90d', label: '90 days' },
  { value: '366d', label: '1 year' },
  { value: 'never', label: 'Never' },
];

/** My API tokens (GET /api/v1/tokens): create one (its secret shown once), revoke one. */
export function ApiTokensCard() {
  const queryClient = useQueryClient();
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: () => unwrap(api.GET('/api/v1/tokens')) });
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const revoke = async (token: ApiToken) => {
    setBusy(token.id);
    setError(null);
    try {
      await unwrap(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id: token.id } } }));
      await queryClient.invalidateQueries({ queryKey: ['tokens'] });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const list = tokens.data?.tokens ?? [];
  return (
    <Card withBorder component="section" aria-labelledby="tokens-title">
      <Stack>
        <Group justify="space-between" wrap="wrap">
          <Title order={3} size="h4" id="tokens-title">
            API tokens
          </Title>
          <Button onClick={() => setCreating(true)}>Create a token</Button>
        </Group>
        <Text size="sm" c="dimmed">
          For the <Code>lapse</Code> command line and scripts: send one as <Code>Authorization: Bearer …</Code>.
        </Text>
        <ProblemAlert error={tokens.error ?? error} />
        {tokens.data && list.length === 0 && (
          <Text size="sm" c="dimmed">
            You have no API tokens.
          </Text>
        )}
        {list.length > 0 && (
          <ScrollArea>
            <Table aria-label="API tokens" miw={340}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Scopes</Table.Th>
                  <Table.Th visibleFrom="sm">Created</Table.Th>
                  <Table.Th>Expires</Table.Th>
                  <Table.Th visibleFrom="sm">Last used</Table.Th>
                  <Table.Th>
                    <VisuallyHidden>Status or revoke</VisuallyHidden>
                  </Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((t) => (
                  <Table.Tr key={t.id} data-testid="token-row">
                    <Table.Td style={{ wordBreak: 'break-word' }}>{t.name}</Table.Td>
                    <Table.Td>{t.scopes.join(', ')}</Table.Td>
                    <Table.Td visibleFrom="sm">
                      <When at={t.createdAt} />
                    </Table.Td>
                    <Table.Td>{t.expiresAt ? <When at={t.expiresAt} /> : 'never'}</Table.Td>
                    <Table.Td visibleFrom="sm">
                      <When at={t.lastUsedAt} />
                    </Table.Td>
                    <Table.Td>
                      {t.status === 'active' ? (
                        <Button
                          size="compact-xs"
                          color="red"
                          variant="light"
                          onClick={() => void revoke(t)}
                          loading={busy === t.id}
                          aria-label={`Revoke token ${t.name}`}
                        >
                          Revoke
                        </Button>
                      ) : (
                        <Badge color="gray">{t.status}</Badge>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea>
        )}
      </Stack>
      <CreateTokenDialog opened={creating} onClose={() => setCreating(false)} />
    </Card>
  );
}

/**
 * The form, then the new token shown once. The secret lives only in this dialog's state (never in
 * the query cache) and is dropped when the dialog closes; the list is refetched without it.
 */
function CreateTokenDialog({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const queryClient = useQueryClient();
  const { session } = useSession();
  const allowed = new Set<Scope>(session?.scopes ?? []);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>(['read']);
  const [expiresIn, setExpiresIn] = useState('30d');
  const [issued, setIssued] = useState<IssuedToken | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      setIssued(await unwrap(api.POST('/api/v1/tokens', { body: { name: name.trim(), scopes, expiresIn } })));
      await queryClient.invalidateQueries({ queryKey: ['tokens'] });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const close = () => {
    setIssued(null);
    setError(null);
    setName('');
    setScopes(['read']);
    setExpiresIn('30d');
    onClose();
  };

  return (
    <Modal opened={opened} onClose={close} title={issued ? 'Your new API token' : 'Create an API token'} size="lg">
      {issued ? (
        <Stack>
          <Alert color="yellow">Shown once. Copy it now: after you close this, Lapse cannot show it again.</Alert>
          <Code block data-testid="new-token" style={{ wordBreak: 'break-all', whiteSpace: 'pre-wrap' }}>
            {issued.token}
          </Code>
          <Text size="sm">
            {issued.name}: {issued.scopes.join(', ')};{' '}
            {issued.expiresAt ? (
              <>
                expires <When at={issued.expiresAt} />
              </>
            ) : (
              'never expires'
            )}
            .
          </Text>
          <Group justify="flex-end">
            <CopyButton value={issued.token}>
              {({ copied, copy }) => (
                <Button variant="default" onClick={copy}>
                  {copied ? 'Copied' : 'Copy token'}
                </Button>
              )}
            </CopyButton>
            <Button onClick={close}>Done, forget it</Button>
          </Group>
        </Stack>
      ) : (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            void create();
          }}
        >
          <Stack>
            <TextInput
              label="Token name"
              description="What it is for, e.g. laptop CLI"
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              maxLength={100}
              required
              data-autofocus
            />
            <Checkbox.Group
              label="Scopes"
              description="A token can never do more than you can."
              value={scopes}
              onChange={(v) => setScopes(v as Scope[])}
              withAsterisk
            >
              <Stack gap={6} mt={6}>
                {SCOPES.filter((s) => allowed.has(s.value)).map((s) => (
                  <Checkbox key={s.value} value={s.value} label={s.label} />
                ))}
              </Stack>
            </Checkbox.Group>
            <Select label="Expires after" data={EXPIRIES} value={expiresIn} onChange={(v) => setExpiresIn(v ?? '30d')} allowDeselect={false} />
            <ProblemAlert error={error} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={busy} disabled={name.trim() === '' || scopes.length === 0}>
                Create token
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
