import { Loader, Stack, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { ApiTokensCard } from './security/ApiTokens';
import { AuthenticatorAppCard } from './security/AuthenticatorApp';
import { PasskeysCard } from './security/Passkeys';

/**
 * My second factors (authenticator app, passkeys) and API tokens. Secrets (a new authenticator
 * secret, a new token) are shown once from component state and never cached.
 */
export function SecurityPage() {
  const mfa = useQuery({ queryKey: ['mfa'], queryFn: () => unwrap(api.GET('/api/v1/mfa')) });
  return (
    <Stack maw={900}>
      <Title order={2}>Security</Title>
      {mfa.isPending && <Loader aria-label="Loading your second factors" />}
      <ProblemAlert error={mfa.error} />
      {mfa.data && (
        <>
          {mfa.data.factors.length > 0 && (
            <Text size="sm" c="dimmed">
              Adding or removing a factor asks you to confirm it is you with one you already have.
            </Text>
          )}
          <AuthenticatorAppCard totp={mfa.data.totp} />
          <PasskeysCard passkeys={mfa.data.passkeys} />
        </>
      )}
      <ApiTokensCard />
    </Stack>
  );
}
