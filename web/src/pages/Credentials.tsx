import { Alert, Button, Code, CopyButton, Group, Modal, Stack, Table, Text } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap, type Grant } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';

/** A command line that uses these credentials, for the connectors that have one. */
export function connectionHint(connector: string | undefined, c: Record<string, string>): string | null {
  const q = (v: string | undefined) => `'${(v ?? '').replace(/'/g, `'\\''`)}'`;
  if (connector === 'postgres' && c.username)
    return `PGPASSWORD=${q(c.password)} psql "host=${c.host ?? 'localhost'} port=${c.port ?? '5432'} dbname=${c.database ?? 'postgres'} user=${c.username}"`;
  if (connector === 'mysql' && c.username) return `mariadb -h ${q(c.host)} -P ${c.port ?? '3306'} -u ${q(c.username)} -p${q(c.password)}`;
  if (connector === 'redis' && c.username) return `redis-cli -h ${q(c.host)} -p ${c.port ?? '6379'} --user ${q(c.username)} --pass ${q(c.password)}`;
  if (connector === 'ssh' && c.certificate)
    return `ssh -o CertificateFile=./lapse-cert.pub ${c.principal ?? c.username ?? '<user>'}@<host>   # save the certificate as ./lapse-cert.pub`;
  return null;
}

/**
 * Credentials are shown once: fetched when the person asks (the server hands them out a single
 * time), held only in this dialog's state, and dropped when it closes. Never cached or stored.
 * The dialog stays mounted after the fetch, when the grant no longer has credentials waiting.
 */
export function CredentialsButton({ grant, connector }: { grant: Grant; connector: string | undefined }) {
  const queryClient = useQueryClient();
  const [credentials, setCredentials] = useState<Record<string, string> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const reveal = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await unwrap(api.POST('/api/v1/grants/{id}/credentials', { params: { path: { id: grant.id } } }));
      setCredentials(answer.credentials);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const close = () => {
    setCredentials(null);
    setError(null);
    // The grant no longer has credentials waiting: refresh it so the button goes.
    void queryClient.invalidateQueries({ queryKey: ['grants'] });
  };
  const hint = credentials ? connectionHint(connector, credentials) : null;

  return (
    <>
      {grant.credentialsWaiting && (
        <Button
          size="xs"
          variant="light"
          color="grape"
          onClick={reveal}
          loading={busy}
          aria-label={`Reveal credentials for ${grant.target}/${grant.entitlement}`}
        >
          Reveal credentials
        </Button>
      )}
      <Modal opened={credentials !== null || error !== null} onClose={close} title="Credentials" size="lg">
        <Stack>
          <ProblemAlert error={error} />
          {credentials && (
            <>
              <Alert color="yellow">Shown once. Copy what you need now: after you close this, Lapse cannot show them again.</Alert>
              <Table>
                <Table.Tbody>
                  {Object.entries(credentials).map(([key, value]) => (
                    <Table.Tr key={key}>
                      <Table.Th scope="row">{key}</Table.Th>
                      <Table.Td>
                        <Code style={{ wordBreak: 'break-all' }}>{value}</Code>
                      </Table.Td>
                      <Table.Td w={90}>
                        <CopyButton value={value}>
                          {({ copied, copy }) => (
                            <Button size="compact-xs" variant="default" onClick={copy} aria-label={`Copy ${key}`}>
                              {copied ? 'Copied' : 'Copy'}
                            </Button>
                          )}
                        </CopyButton>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
              {hint && (
                <Stack gap={4}>
                  <Text size="sm" fw={600}>
                    Connect
                  </Text>
                  <Code block style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
                    {hint}
                  </Code>
                  <Group>
                    <CopyButton value={hint}>
                      {({ copied, copy }) => (
                        <Button size="xs" variant="default" onClick={copy}>
                          {copied ? 'Copied' : 'Copy command'}
                        </Button>
                      )}
                    </CopyButton>
                  </Group>
                </Stack>
              )}
              <Group justify="flex-end">
                <Button onClick={close}>Done, forget them</Button>
              </Group>
            </>
          )}
        </Stack>
      </Modal>
    </>
  );
}
