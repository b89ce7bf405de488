import { Alert, Button, Group, Modal, Select, Stack, Text, TextInput, Textarea } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { useNavigate } from 'react-router';
import { api, unwrap, type CatalogueItem } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { approvalPreview } from '../components/Status';
import { useStepUp } from '../components/StepUp';
import { formatDuration } from '../time';

const STEPS_MS = [15, 30, 60, 120, 240, 480, 720, 1440, 2880, 10080].map((m) => m * 60_000);

/** Duration choices up to the policy's maximum (always including the default and the maximum). */
export function durationChoices(defaultMs: number, maxMs: number): number[] {
  return [...new Set([...STEPS_MS.filter((ms) => ms <= maxMs), defaultMs, maxMs])].sort((a, b) => a - b);
}

/** A duration the API accepts ("90m"). */
export function durationText(ms: number): string {
  return `${Math.round(ms / 60_000)}m`;
}

/** The policy's ticket pattern for checking as you type; null when the browser cannot compile it (the server still checks). */
function ticketRegExp(pattern: string | null): RegExp | null {
  if (!pattern) return null;
  try {
    return new RegExp(pattern);
  } catch {
    return null;
  }
}

export function RequestForm({ item, onClose }: { item: CatalogueItem | null; onClose: () => void }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const withStepUp = useStepUp();
  const [duration, setDuration] = useState<string | null>(null);
  const [reason, setReason] = useState('');
  const [ticket, setTicket] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setDuration(item ? String(item.defaultDurationMs) : null);
    setReason('');
    setTicket('');
    setError(null);
  }, [item]);

  const choices = useMemo(
    () => (item ? durationChoices(item.defaultDurationMs, item.maxDurationMs).map((ms) => ({ value: String(ms), label: formatDuration(ms) })) : []),
    [item],
  );
  if (!item) return <Modal opened={false} onClose={onClose} title="" />;

  const pattern = ticketRegExp(item.requires.ticketPattern);
  const ticketError = item.requires.ticketPattern && ticket !== '' && pattern && !pattern.test(ticket) ? `Does not match ${item.requires.ticketPattern}` : null;
  const ticketMissing = item.requires.ticketPattern !== null && ticket === '';
  const reasonShort = reason.trim().length < item.requires.justificationMinLength;
  const preview = approvalPreview(item);

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const body = {
        target: item.target,
        entitlement: item.entitlement,
        duration: durationText(Number(duration)),
        reason: reason.trim(),
        ...(ticket ? { ticket } : {}),
      };
      const answer = await withStepUp(() => unwrap(api.POST('/api/v1/requests', { body })));
      await queryClient.invalidateQueries({ queryKey: ['requests'] });
      onClose();
      navigate(`/requests/${answer.request.id}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal opened onClose={onClose} title={`Request ${item.target}/${item.entitlement}`} size="lg">
      <Stack>
        <Alert color={preview === 'auto-approved' ? 'green' : 'yellow'} data-testid="approval-preview">
          {preview === 'auto-approved' ? 'This request will be auto-approved.' : `This request ${preview}.`}
          {item.autoApproveIf && !item.autoApprove ? ` (auto-approved when ${item.autoApproveIf})` : ''}
        </Alert>
        <Select
          label="Duration"
          description={`At most ${formatDuration(item.maxDurationMs)}`}
          data={choices}
          value={duration}
          onChange={setDuration}
          allowDeselect={false}
        />
        <Textarea
          label="Reason"
          description={item.requires.justificationMinLength > 0 ? `At least ${item.requires.justificationMinLength} characters` : undefined}
          required={item.requires.justificationMinLength > 0}
          autosize
          minRows={2}
          maxLength={2000}
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
        />
        {(item.requires.ticketPattern !== null || ticket !== '') && (
          <TextInput
            label="Ticket"
            description={item.requires.ticketPattern ? `Format: ${item.requires.ticketPattern}` : undefined}
            required={item.requires.ticketPattern !== null}
            maxLength={200}
            value={ticket}
            error={ticketError}
            onChange={(e) => setTicket(e.currentTarget.value.trim())}
          />
        )}
        {item.requires.mfaMaxAgeMs !== null && (
          <Text size="sm" c="dimmed">
            This entitlement needs a second factor verified within {formatDuration(item.requires.mfaMaxAgeMs)}; you will be asked for a code if needed.
          </Text>
        )}
        <ProblemAlert error={error} title="Not requested" />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button onClick={submit} loading={busy} disabled={reasonShort || ticketMissing || ticketError !== null || !duration}>
            Submit request
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
