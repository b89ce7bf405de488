import { Button, Collapse, Group, Paper, Select, Stack, Text, TextInput, Textarea } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api, unwrap } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { useStepUp } from '../components/StepUp';
import { formatDuration } from '../time';

/**
 * Emergency access without approval, reviewed by an admin afterwards. Shown only to whoever may
 * break glass into something (never while break-glass is off), with a picker of exactly that.
 */
export function BreakGlassForm() {
  const allowed = useQuery({ queryKey: ['break-glass-entitlements'], queryFn: () => unwrap(api.GET('/api/v1/break-glass/entitlements')) });
  const [opened, { toggle }] = useDisclosure(false);
  const navigate = useNavigate();
  const withStepUp = useStepUp();
  const [fields, setFields] = useState({ entitlement: '', duration: '30m', reason: '' });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const items = allowed.data?.items ?? [];
  if (items.length === 0) return null;
  const set = (key: 'duration' | 'reason') => (e: { currentTarget: { value: string } }) => setFields({ ...fields, [key]: e.currentTarget.value });
  const chosen = items.find((i) => `${i.target}/${i.entitlement}` === fields.entitlement);
  const minReason = allowed.data!.minReasonLength;

  const submit = async () => {
    if (!chosen) return;
    setBusy(true);
    setError(null);
    try {
      const body = { target: chosen.target, entitlement: chosen.entitlement, duration: fields.duration, reason: fields.reason.trim() };
      const answer = await withStepUp(() => unwrap(api.POST('/api/v1/break-glass', { body })));
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
          <Group grow align="flex-start">
            <Select
              label="Entitlement"
              placeholder="Pick one"
              searchable
              required
              data={items.map((i) => ({
                value: `${i.target}/${i.entitlement}`,
                label: i.description ? `${i.target}/${i.entitlement} — ${i.description}` : `${i.target}/${i.entitlement}`,
              }))}
              value={fields.entitlement || null}
              onChange={(value) => setFields({ ...fields, entitlement: value ?? '' })}
              nothingFoundMessage="Not something you may break glass into"
            />
            <TextInput
              label="Duration"
              description={`e.g. 30m; at most ${formatDuration(allowed.data!.maxDurationMs)}`}
              value={fields.duration}
              onChange={set('duration')}
              maxLength={20}
              required
            />
          </Group>
          <Textarea
            label="Reason (the incident)"
            description={`At least ${minReason} characters`}
            value={fields.reason}
            onChange={set('reason')}
            maxLength={2000}
            autosize
            minRows={2}
            required
          />
          <ProblemAlert error={error} title="Not granted" />
          <Group justify="flex-end">
            <Button color="red" onClick={submit} loading={busy} disabled={!chosen || fields.reason.trim().length < minReason}>
              Break glass
            </Button>
          </Group>
        </Stack>
      </Collapse>
    </Paper>
  );
}
