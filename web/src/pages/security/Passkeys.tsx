import { Button, Card, Group, Stack, Table, Text, TextInput, Title, VisuallyHidden } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap, type Passkey, type PasskeyRegistration } from '../../api/client';
import { ProblemAlert } from '../../components/ProblemAlert';
import { useStepUp } from '../../components/StepUp';
import { When } from '../../time';

/** Passkeys: the list, registering one with this browser's authenticator, removing one. */
export function PasskeysCard({ passkeys }: { passkeys: readonly Passkey[] }) {
  const queryClient = useQueryClient();
  const withStepUp = useStepUp();
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const supported = typeof window.PublicKeyCredential?.parseCreationOptionsFromJSON === 'function';

  const run = async (what: string, action: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await action();
      await queryClient.invalidateQueries({ queryKey: ['mfa'] });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  // NB. The options carry a single-use challenge, so a step-up retry fetches fresh ones.
  const register = () =>
    run('register', async () => {
      const options = await withStepUp(() => unwrap(api.POST('/api/v1/mfa/passkeys/registration-options')));
      const credential = (await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options as PublicKeyCredentialCreationOptionsJSON),
      })) as PublicKeyCredential | null;
      if (!credential) throw new Error('no passkey was created');
      // NB. The body's type is the server's zod schema of an attestation; toJSON() produces exactly that shape.
      const response = credential.toJSON() as PasskeyRegistration;
      await unwrap(api.POST('/api/v1/mfa/passkeys', { body: { name: name.trim(), response } }));
      setName('');
    });
  const remove = (passkey: Passkey) =>
    run(passkey.id, () => withStepUp(() => unwrap(api.DELETE('/api/v1/mfa/passkeys/{id}', { params: { path: { id: passkey.id } } }))).then(() => undefined));

  return (
    <Card withBorder component="section" aria-labelledby="passkeys-title">
      <Stack>
        <Title order={3} size="h4" id="passkeys-title">
          Passkeys
        </Title>
        {passkeys.length === 0 ? (
          <Text size="sm" c="dimmed">
            No passkeys yet. A passkey is Touch ID, Windows Hello, your phone or a security key.
          </Text>
        ) : (
          <Table aria-label="Passkeys" layout="fixed">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>Added</Table.Th>
                <Table.Th visibleFrom="xs">Last used</Table.Th>
                <Table.Th w={90}>
                  <VisuallyHidden>Actions</VisuallyHidden>
                </Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {passkeys.map((p) => (
                <Table.Tr key={p.id}>
                  <Table.Td style={{ wordBreak: 'break-word' }}>{p.name}</Table.Td>
                  <Table.Td>
                    <When at={p.createdAt} />
                  </Table.Td>
                  <Table.Td visibleFrom="xs">
                    <When at={p.lastUsedAt} />
                  </Table.Td>
                  <Table.Td>
                    <Button
                      size="compact-xs"
                      color="red"
                      variant="light"
                      onClick={() => void remove(p)}
                      loading={busy === p.id}
                      aria-label={`Remove passkey ${p.name}`}
                    >
                      Remove
                    </Button>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
        {supported ? (
          <form
            onSubmit={(event) => {
              event.preventDefault();
              void register();
            }}
          >
            <Group align="flex-end" wrap="wrap">
              <TextInput
                label="Passkey name"
                description="So you can tell them apart, e.g. laptop"
                value={name}
                onChange={(e) => setName(e.currentTarget.value)}
                maxLength={100}
                required
                style={{ flex: '1 1 200px' }}
              />
              <Button type="submit" loading={busy === 'register'} disabled={name.trim() === ''}>
                Add a passkey
              </Button>
            </Group>
          </form>
        ) : (
          <Text size="sm" c="dimmed">
            This browser cannot register passkeys.
          </Text>
        )}
        <ProblemAlert error={error} />
      </Stack>
    </Card>
  );
}
