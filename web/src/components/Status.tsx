import { Badge } from '@mantine/core';

const COLORS: Record<string, string> = {
  pending: 'yellow',
  approved: 'green',
  denied: 'red',
  cancelled: 'gray',
  timed_out: 'gray',
  provisioning: 'blue',
  active: 'green',
  revoking: 'orange',
  revoked: 'gray',
  failed: 'red',
  open: 'red',
  resolved: 'gray',
  remediated: 'green',
};

export function Status({ value }: { value: string }) {
  return (
    <Badge color={COLORS[value] ?? 'gray'} variant="light">
      {value.replace('_', ' ')}
    </Badge>
  );
}

/** "needs 1 of sre-leads, then 1 of security" or "auto-approved". */
export function approvalPreview(item: {
  autoApprove: boolean;
  stages: { name: string; quorum: number; approvers: { users: string[]; groups: string[] } }[];
}): string {
  if (item.autoApprove || item.stages.length === 0) return 'auto-approved';
  return `needs ${item.stages.map((s) => `${s.quorum} of ${[...s.approvers.groups, ...s.approvers.users].join(' or ')}`).join(', then ')}`;
}
