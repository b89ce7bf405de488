import { AppShell, Badge, Burger, Button, Center, Group, Loader, NavLink, Stack, Text, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { lazy, Suspense } from 'react';
import { Link, Navigate, Route, Routes, useLocation } from 'react-router';
import { useLiveUpdates } from './api/live';
import { useSession } from './api/session';
import { ApprovalsPage } from './pages/Approvals';
import { CataloguePage } from './pages/Catalogue';
import { MyAccessPage } from './pages/MyAccess';
import { RequestDetailPage } from './pages/RequestDetail';
import { SignInPage } from './pages/SignIn';

// Admin views, the charts and the security settings load on first use: most visits never open them.
const AdminPage = lazy(() => import('./pages/Admin').then((m) => ({ default: m.AdminPage })));
const DashboardPage = lazy(() => import('./pages/Dashboard').then((m) => ({ default: m.DashboardPage })));
const SecurityPage = lazy(() => import('./pages/Security').then((m) => ({ default: m.SecurityPage })));

const NAV = [
  { to: '/', label: 'Request access' },
  { to: '/access', label: 'My access' },
  { to: '/approvals', label: 'Approvals' },
  { to: '/dashboard', label: 'Dashboard' },
  { to: '/security', label: 'Security' },
];

export function App() {
  const { session, loading, readsEverything, signOut } = useSession();
  const location = useLocation();
  const [opened, { toggle, close }] = useDisclosure();
  const live = useLiveUpdates(session !== null);

  if (loading) {
    return (
      <Center h="100vh">
        <Loader aria-label="Loading" />
      </Center>
    );
  }
  if (!session) return <SignInPage returnTo={`${location.pathname}${location.search}`} />;

  const links = readsEverything ? [...NAV, { to: '/admin', label: 'Admin' }] : NAV;
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Menu" />
            <Title order={1} size="h3">
              Lapse
            </Title>
            <Badge
              variant="dot"
              color={live === 'live' ? 'green' : live === 'connecting' ? 'yellow' : 'red'}
              aria-live="polite"
              data-testid="live-state"
              title={live === 'offline' ? 'Lost the connection to the server: changes are not shown until it is back (retrying)' : undefined}
            >
              {live === 'live' ? 'live' : live === 'connecting' ? 'connecting' : 'server lost'}
            </Badge>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <Text size="sm" visibleFrom="xs" data-testid="signed-in-as">
              {session.principal.id}
            </Text>
            <Button variant="subtle" size="xs" onClick={() => void signOut()}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        <Stack gap={2}>
          {links.map((l) => (
            <NavLink
              key={l.to}
              component={Link}
              to={l.to}
              label={l.label}
              active={l.to === '/' ? location.pathname === '/' : location.pathname.startsWith(l.to)}
              onClick={close}
            />
          ))}
        </Stack>
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loader aria-label="Loading" />}>
          <Routes>
            <Route path="/" element={<CataloguePage />} />
            <Route path="/access" element={<MyAccessPage />} />
            <Route path="/approvals" element={<ApprovalsPage />} />
            <Route path="/requests/:id" element={<RequestDetailPage />} />
            <Route path="/dashboard" element={<DashboardPage />} />
            <Route path="/security" element={<SecurityPage />} />
            <Route path="/admin/*" element={readsEverything ? <AdminPage /> : <Navigate to="/" replace />} />
            <Route path="*" element={<Text>There is no page here.</Text>} />
          </Routes>
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}
