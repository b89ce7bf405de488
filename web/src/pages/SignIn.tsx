import { Button, Center, Divider, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, setCsrfToken, unwrap } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';

/** Single sign-on (a full-page redirect through the identity provider) or a local account. */
export function SignInPage({ returnTo }: { returnTo: string }) {
  const queryClient = useQueryClient();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await unwrap(api.POST('/api/v1/auth/login', { body: { username, password } }));
      setCsrfToken(answer.csrfToken);
      setPassword('');
      await queryClient.invalidateQueries({ queryKey: ['session'] });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Center mih="100vh" p="md">
      <Paper withBorder p="xl" w="100%" maw={420} component="main">
        <Stack>
          <Title order={1} size="h2">
            Sign in to Lapse
          </Title>
          <Text size="sm" c="dimmed">
            Just-in-time access: ask for what you need, for as long as you need it.
          </Text>
          <Button component="a" href={`/auth/oidc/login?${new URLSearchParams({ returnTo })}`} size="md">
            Sign in with single sign-on
          </Button>
          <Divider label="or with a local account" labelPosition="center" />
          <form onSubmit={submit} aria-label="Local sign-in">
            <Stack>
              <TextInput
                label="User name"
                name="username"
                autoComplete="username"
                required
                maxLength={256}
                value={username}
                onChange={(e) => setUsername(e.currentTarget.value)}
              />
              <PasswordInput
                label="Password"
                name="password"
                autoComplete="current-password"
                required
                maxLength={1024}
                value={password}
                onChange={(e) => setPassword(e.currentTarget.value)}
              />
              <ProblemAlert error={error} title="Not signed in" />
              <Button type="submit" variant="default" loading={busy}>
                Sign in
              </Button>
            </Stack>
          </form>
        </Stack>
      </Paper>
    </Center>
  );
}
