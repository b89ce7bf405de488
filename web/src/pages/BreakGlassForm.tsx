import { Button, Collapse, Group, Paper, Stack, Text, TextInput, Textarea } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api, unwrap } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { useStepUp } from '../components/StepUp';

/** Emergency access without approval, for the configured on-call subjects; reviewed afterwards by an admin. */
export function BreakGlassForm() {
  const [opened, { toggle }] = useDisclosure(false);
  const navigate = useNavigate();
  const withStepUp = useStepUp();
  const [fields, setFields] = useState({ target: '', entitlement: '', duration: '30m', reason: '' });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (key: keyof typeof fields) => (e: { currentTarget: { value: string } }) => setFields({ ...fields, [key]: e.currentTarget.value });

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await withStepUp(() => unwrap(api.POST('/api/v1/break-glass', { body: { ...fields, reason: fields.reason.trim() } })));
      navigate(`/requests/${answer.request.id}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Paper withBorder p="sm">
      <Group justify="space-between">
        <Text fw={600}>Emergency (break-glass) access</Text>
        <Button variant="subtle" color="red" onClick={toggle} aria-expanded={opened}>
          {opened ? 'Hide' : 'Break glass…'}
        </Button>
      </Group>
      <Collapse in={opened}>
        <Stack mt="sm">
          <Text size="sm" c="dimmed">
            Granted at once without approval, recorded and reviewed by an admin afterwards. Only for incidents.
          </Text>
          <Group grow>
            <TextInput label="Target" value={fields.target} onChange={set('target')} maxLength={63} required />
            <TextInput label="Entitlement" value={fields.entitlement} onChange={set('entitlement')} maxLength={63} required />
            <TextInput label="Duration" description="e.g. 30m, 1h" value={fields.duration} onChange={set('duration')} maxLength={20} required />
          </Group>
          <Textarea label="Reason (the incident)" value={fields.reason} onChange={set('reason')} maxLength={2000} autosize minRows={2} required />
          <ProblemAlert error={error} title="Not granted" />
          <Group justify="flex-end">
            <Button color="red" onClick={submit} loading={busy} disabled={!fields.target || !fields.entitlement || !fields.reason.trim()}>
              Break glass
            </Button>
          </Group>
        </Stack>
      </Collapse>
    </Paper>
  );
}
