import { Accordion, Badge, Button, Card, Group, Loader, Stack, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { api, unwrap, type CatalogueItem } from '../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { approvalPreview } from '../components/Status';
import { formatDuration } from '../time';
import { BreakGlassForm } from './BreakGlassForm';
import { RequestForm } from './RequestForm';

/** What I may request, grouped by target, with each entitlement's terms. */
export function CataloguePage() {
  const catalogue = useQuery({ queryKey: ['catalogue'], queryFn: () => unwrap(api.GET('/api/v1/catalogue')) });
  const [search, setSearch] = useState('');
  const [chosen, setChosen] = useState<CatalogueItem | null>(null);
  // Every target starts open (the catalogue loads after the first render); remember what was closed.
  const [closed, setClosed] = useState<string[]>([]);

  const groups = useMemo(() => {
    const words = search.toLowerCase().split(/\s+/).filter(Boolean);
    const byTarget = new Map<string, CatalogueItem[]>();
    for (const item of catalogue.data?.items ?? []) {
      const text = `${item.target} ${item.entitlement} ${item.description} ${item.connector}`.toLowerCase();
      if (!words.every((w) => text.includes(w))) continue;
      byTarget.set(item.target, [...(byTarget.get(item.target) ?? []), item]);
    }
    return [...byTarget];
  }, [catalogue.data, search]);

  return (
    <Stack maw={960}>
      <Title order={2}>Request access</Title>
      <TextInput
        label="Search what you may request"
        placeholder="target, entitlement or description"
        value={search}
        onChange={(e) => setSearch(e.currentTarget.value)}
        maxLength={200}
      />
      {catalogue.isPending && <Loader aria-label="Loading the catalogue" />}
      <ProblemAlert error={catalogue.error} />
      {catalogue.data && groups.length === 0 && <Text c="dimmed">Nothing matches. You may only see entitlements a policy lets you request.</Text>}
      <Accordion
        multiple
        variant="separated"
        value={groups.map(([t]) => t).filter((t) => !closed.includes(t))}
        onChange={(open) => setClosed(groups.map(([t]) => t).filter((t) => !open.includes(t)))}
      >
        {groups.map(([target, items]) => (
          <Accordion.Item key={target} value={target}>
            <Accordion.Control>
              <Group gap="xs">
                <Text fw={600}>{target}</Text>
                <Badge variant="light" color="gray">
                  {items[0]!.connector}
                </Badge>
              </Group>
            </Accordion.Control>
            <Accordion.Panel>
              <Stack gap="xs">
                {items.map((item) => (
                  <Card key={`${item.target}/${item.entitlement}`} withBorder padding="sm" data-testid={`entitlement-${item.target}-${item.entitlement}`}>
                    <Group justify="space-between" wrap="wrap" gap="xs">
                      <Stack gap={2} style={{ flex: '1 1 260px' }}>
                        <Text fw={600}>{item.entitlement}</Text>
                        {item.description && <Text size="sm">{item.description}</Text>}
                        <Group gap={6}>
                          <Badge variant="outline">up to {formatDuration(item.maxDurationMs)}</Badge>
                          <Badge variant="outline" color={item.autoApprove ? 'green' : 'yellow'}>
                            {approvalPreview(item)}
                          </Badge>
                          {item.requires.mfaMaxAgeMs !== null && (
                            <Badge variant="outline" color="grape">
                              MFA
                            </Badge>
                          )}
                          {item.requires.ticketPattern && (
                            <Badge variant="outline" color="cyan">
                              ticket {item.requires.ticketPattern}
                            </Badge>
                          )}
                        </Group>
                      </Stack>
                      <Button onClick={() => setChosen(item)} aria-label={`Request ${item.target}/${item.entitlement}`}>
                        Request
                      </Button>
                    </Group>
                  </Card>
                ))}
              </Stack>
            </Accordion.Panel>
          </Accordion.Item>
        ))}
      </Accordion>
      <RequestForm item={chosen} onClose={() => setChosen(null)} />
      <BreakGlassForm />
    </Stack>
  );
}
