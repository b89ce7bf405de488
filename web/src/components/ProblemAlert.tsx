import { Alert, List, Text } from '@mantine/core';
import { ApiProblem } from '../api/client';

/** An error as the server explained it: what, where, and how to fix it. */
export function ProblemAlert({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const problem = error instanceof ApiProblem ? error.problem : null;
  return (
    <Alert color="red" title={title ?? problem?.title ?? 'Something went wrong'} role="alert">
      <Text size="sm">{problem?.detail ?? (error instanceof Error ? error.message : String(error))}</Text>
      {problem?.problems && (
        <List size="sm">
          {problem.problems.map((p) => (
            <List.Item key={p}>{p}</List.Item>
          ))}
        </List>
      )}
      {problem?.hint && (
        <Text size="sm" c="dimmed">
          {problem.hint}
        </Text>
      )}
    </Alert>
  );
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiProblem && error.problem.status === 404;
}
