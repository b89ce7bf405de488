import { Tabs, Title, Stack } from '@mantine/core';
import { useNavigate, useParams } from 'react-router';
import { useSession } from '../api/session';
import { ActiveGrantsPanel, BreakGlassPanel, RevocationsPanel } from './admin/Grants';
import { AuditPanel } from './admin/Audit';
import { ConfigPanel, FindingsPanel } from './admin/Config';
import { NotificationsPanel } from './admin/Notifications';
import { VaultPanel } from './admin/Vault';

const TABS = [
  { value: 'grants', label: 'Active grants' },
  { value: 'break-glass', label: 'Break-glass' },
  { value: 'revocations', label: 'Revocations' },
  { value: 'findings', label: 'Findings' },
  { value: 'vault', label: 'Vault' },
  { value: 'config', label: 'Targets and policies' },
  { value: 'audit', label: 'Audit' },
];

/** Tabs only admins see (their APIs refuse auditors). */
const ADMIN_TABS = [{ value: 'notifications', label: 'Notifications' }];

/** Admins and auditors: everything active, what needs attention, the config in force, the audit log. */
export function AdminPage() {
  const { '*': tab = '' } = useParams();
  const navigate = useNavigate();
  const { isAdmin } = useSession();
  const tabs = isAdmin ? [...TABS, ...ADMIN_TABS] : TABS;
  const current = tabs.some((t) => t.value === tab) ? tab : 'grants';
  return (
    <Stack>
      <Title order={2}>Admin</Title>
      <Tabs value={current} onChange={(value) => navigate(`/admin/${value ?? 'grants'}`)} keepMounted={false}>
        <Tabs.List style={{ overflowX: 'auto', flexWrap: 'nowrap' }}>
          {tabs.map((t) => (
            <Tabs.Tab key={t.value} value={t.value}>
              {t.label}
            </Tabs.Tab>
          ))}
        </Tabs.List>
        <Tabs.Panel value="grants" pt="md">
          <ActiveGrantsPanel canRevoke={isAdmin} />
        </Tabs.Panel>
        <Tabs.Panel value="break-glass" pt="md">
          <BreakGlassPanel canReview={isAdmin} />
        </Tabs.Panel>
        <Tabs.Panel value="revocations" pt="md">
          <RevocationsPanel />
        </Tabs.Panel>
        <Tabs.Panel value="findings" pt="md">
          <FindingsPanel />
        </Tabs.Panel>
        <Tabs.Panel value="vault" pt="md">
          <VaultPanel />
        </Tabs.Panel>
        <Tabs.Panel value="config" pt="md">
          <ConfigPanel canCheck={isAdmin} />
        </Tabs.Panel>
        <Tabs.Panel value="audit" pt="md">
          <AuditPanel />
        </Tabs.Panel>
        {isAdmin && (
          <Tabs.Panel value="notifications" pt="md">
            <NotificationsPanel />
          </Tabs.Panel>
        )}
      </Tabs>
    </Stack>
  );
}
