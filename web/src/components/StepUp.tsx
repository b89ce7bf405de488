import { Alert, Button, Group, Modal, PinInput, Stack, Text } from '@mantine/core';
import { createContext, useCallback, useContext, useRef, useState, type ReactNode } from 'react';
import { api, ApiProblem, unwrap, type StepUpBody } from '../api/client';

type WithStepUp = <T>(action: () => Promise<T>) => Promise<T>;

const StepUpContext = createContext<WithStepUp | null>(null);

/**
 * Runs an action; when the server answers `mfa_step_up_required` (a policy wants a fresh second
 * factor), asks for an authenticator code, verifies it for this session (POST /api/v1/mfa/step-up)
 * and runs the action once more.
 */
export function StepUpProvider({ children }: { children: ReactNode }) {
  const [prompt, setPrompt] = useState<{ problem: ApiProblem } | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const settle = useRef<((ok: boolean) => void) | null>(null);

  const ask = (problem: ApiProblem) =>
    new Promise<boolean>((resolve) => {
      settle.current = resolve;
      setCode('');
      setError(null);
      setPrompt({ problem });
    });

  const close = (ok: boolean) => {
    setPrompt(null);
    settle.current?.(ok);
    settle.current = null;
  };

  /** A passkey: the server's assertion options, the browser's authenticator, the result verified for this session. */
  const usePasskey = async () => {
    setBusy(true);
    setError(null);
    try {
      const options = await unwrap(api.POST('/api/v1/mfa/passkeys/authentication-options'));
      const credential = (await navigator.credentials.get({
        publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options as PublicKeyCredentialRequestOptionsJSON),
      })) as PublicKeyCredential | null;
      if (!credential) throw new Error('no passkey was chosen');
      // NB. The body's type is the server's zod schema of an assertion; toJSON() produces exactly that shape.
      const webauthn = credential.toJSON() as StepUpBody['webauthn'];
      await unwrap(api.POST('/api/v1/mfa/step-up', { body: { webauthn } }));
      close(true);
    } catch (e) {
      setError(e instanceof ApiProblem ? e.problem.detail : e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  const verify = async () => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/mfa/step-up', { body: { totp: code } }));
      close(true);
    } catch (e) {
      setError(e instanceof ApiProblem ? e.problem.detail : String(e));
      setCode('');
    } finally {
      setBusy(false);
    }
  };

  const withStepUp = useCallback<WithStepUp>(async (action) => {
    try {
      return await action();
    } catch (e) {
      if (!(e instanceof ApiProblem) || e.code !== 'mfa_step_up_required') throw e;
      if (!(await ask(e))) throw e;
      return action();
    }
  }, []);

  const factors = prompt?.problem.problem.stepUp?.factors ?? [];
  return (
    <StepUpContext.Provider value={withStepUp}>
      {children}
      <Modal opened={prompt !== null} onClose={() => close(false)} title="Confirm it is you" centered zIndex={1000}>
        <Stack>
          <Text size="sm">{prompt?.problem.problem.detail}</Text>
          {factors.includes('totp') ? (
            <>
              <Text size="sm" id="totp-label">
                Enter the 6-digit code from your authenticator app.
              </Text>
              <Group justify="center">
                <PinInput
                  length={6}
                  type="number"
                  oneTimeCode
                  value={code}
                  onChange={setCode}
                  onComplete={() => undefined}
                  aria-labelledby="totp-label"
                  autoFocus
                />
              </Group>
            </>
          ) : factors.includes('webauthn') ? null : (
            <Alert color="yellow">
              You have no second factor enrolled.{' '}
              {prompt?.problem.problem.stepUp?.enroll ? 'Enroll one first (POST ' + prompt.problem.problem.stepUp.enroll + ').' : ''}
            </Alert>
          )}
          {factors.includes('webauthn') && (
            <Button variant={factors.includes('totp') ? 'default' : 'filled'} onClick={usePasskey} loading={busy}>
              Use a passkey
            </Button>
          )}
          {error && (
            <Alert color="red" role="alert">
              {error}
            </Alert>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={() => close(false)}>
              Cancel
            </Button>
            {factors.includes('totp') && (
              <Button onClick={verify} loading={busy} disabled={code.length !== 6}>
                Verify
              </Button>
            )}
          </Group>
        </Stack>
      </Modal>
    </StepUpContext.Provider>
  );
}

export function useStepUp(): WithStepUp {
  const value = useContext(StepUpContext);
  if (!value) throw new Error('useStepUp outside StepUpProvider');
  return value;
}
