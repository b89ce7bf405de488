import { Alert, Badge, Button, Card, Code, CopyButton, Group, PinInput, Stack, Text, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap, type MfaOverview, type TotpEnrollment } from '../../api/client';
import { ProblemAlert } from '../../components/ProblemAlert';
import { QrCode } from '../../components/QrCode';
import { useStepUp } from '../../components/StepUp';
import { When } from '../../time';

/** "JBSW Y3DP EHPK 3PXP": a base32 secret in groups of four, easier to type into an app. */
export function groupSecret(secret: string): string {
  return secret.replace(/(.{4})/g, '$1 ').trim();
}

/**
 * The authenticator app: its status, enrollment (the secret is shown once, held only in this
 * card's state until confirmed or cancelled) and removal.
 */
export function AuthenticatorAppCard({ totp }: { totp: MfaOverview['totp'] }) {
  const queryClient = useQueryClient();
  const withStepUp = useStepUp();
  const [enrollment, setEnrollment] = useState<TotpEnrollment | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<'enroll' | 'confirm' | 'remove' | null>(null);

  const run = async (what: 'enroll' | 'confirm' | 'remove', action: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['mfa'] });

  const enroll = () =>
    run('enroll', async () => {
      setCode('');
      setEnrollment(await withStepUp(() => unwrap(api.POST('/api/v1/mfa/totp'))));
      await refresh();
    });
  const confirm = () =>
    run('confirm', async () => {
      try {
        await unwrap(api.POST('/api/v1/mfa/totp/confirm', { body: { code } }));
      } catch (e) {
        setCode('');
        throw e;
      }
      setEnrollment(null);
      setCode('');
      await refresh();
    });
  const cancel = () => {
    setEnrollment(null);
    setCode('');
    setError(null);
  };
  const remove = () =>
    run('remove', async () => {
      await withStepUp(() => unwrap(api.DELETE('/api/v1/mfa/totp')));
      await refresh();
    });

  const active = totp?.status === 'active';
  return (
    <Card withBorder component="section" aria-labelledby="totp-title">
      <Stack>
        <Group justify="space-between" wrap="wrap">
          <Title order={3} size="h4" id="totp-title">
            Authenticator app
          </Title>
          <Badge color={active ? 'green' : totp ? 'yellow' : 'gray'} data-testid="totp-status">
            {active ? 'active' : totp ? 'waiting for confirmation' : 'not set up'}
          </Badge>
        </Group>
        {active && (
          <Text size="sm">
            Set up <When at={totp.confirmedAt ?? totp.createdAt} />; last used <When at={totp.lastUsedAt} />.
          </Text>
        )}
        {!active && !enrollment && (
          <Text size="sm" c="dimmed">
            Codes from an app such as Google Authenticator, 1Password or Aegis confirm it is you when a policy or a change to your factors asks.
          </Text>
        )}
        {enrollment && (
          <Stack gap="sm">
            <Alert color="yellow">Shown once. Scan the code with your authenticator app, or type the secret into it, then enter the code the app shows.</Alert>
            <Group align="flex-start" wrap="wrap">
              <QrCode value={enrollment.uri} label="QR code for your authenticator app" />
              <Stack gap={4} miw={0} style={{ flex: '1 1 220px' }}>
                <Text size="sm" fw={600} id="totp-secret-label">
                  Secret
                </Text>
                <Code
                  aria-labelledby="totp-secret-label"
                  data-testid="totp-secret"
                  style={{ fontSize: 'var(--mantine-font-size-md)', wordBreak: 'break-word' }}
                >
                  {groupSecret(enrollment.secret)}
                </Code>
                <Group gap="xs">
                  <CopyButton value={enrollment.secret}>
                    {({ copied, copy }) => (
                      <Button size="compact-xs" variant="default" onClick={copy}>
                        {copied ? 'Copied' : 'Copy secret'}
                      </Button>
                    )}
                  </CopyButton>
                  <CopyButton value={enrollment.uri}>
                    {({ copied, copy }) => (
                      <Button size="compact-xs" variant="default" onClick={copy}>
                        {copied ? 'Copied' : 'Copy otpauth:// link'}
                      </Button>
                    )}
                  </CopyButton>
                </Group>
              </Stack>
            </Group>
            <Text size="sm" id="totp-confirm-label">
              The 6-digit code from the app
            </Text>
            <PinInput length={6} type="number" oneTimeCode value={code} onChange={setCode} aria-labelledby="totp-confirm-label" />
            <Group>
              <Button onClick={() => void confirm()} loading={busy === 'confirm'} disabled={code.length !== 6}>
                Confirm
              </Button>
              <Button variant="default" onClick={cancel}>
                Cancel
              </Button>
            </Group>
          </Stack>
        )}
        <ProblemAlert error={error} />
        {!enrollment && (
          <Group>
            {active ? (
              <Button color="red" variant="light" onClick={() => void remove()} loading={busy === 'remove'}>
                Remove authenticator app
              </Button>
            ) : (
              <Button onClick={() => void enroll()} loading={busy === 'enroll'}>
                {totp ? 'Start again' : 'Set up an authenticator app'}
              </Button>
            )}
          </Group>
        )}
      </Stack>
    </Card>
  );
}
