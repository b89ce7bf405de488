import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, type ReactNode } from 'react';
import { api, ApiProblem, setCsrfToken, unwrap, type Session } from './client';

interface SessionState {
  readonly session: Session | null;
  readonly loading: boolean;
  readonly isAdmin: boolean;
  readonly readsEverything: boolean;
  refresh(): Promise<void>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

/**
 * Who is signed in (GET /api/v1/auth/status); null when nobody is. A signed-out visitor gets a
 * plain answer (200, not audited); only a session cookie that stopped working is a 401 (the server
 * clears it, so the next load asks as a visitor).
 */
export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const query = useQuery({
    queryKey: ['session'],
    queryFn: async () => {
      try {
        const { session } = await unwrap(api.GET('/api/v1/auth/status'));
        setCsrfToken(session?.csrfToken ?? null);
        return session;
      } catch (error) {
        if (error instanceof ApiProblem && error.problem.status === 401) {
          setCsrfToken(null);
          return null;
        }
        throw error;
      }
    },
    staleTime: 60_000,
  });
  const session = query.data ?? null;
  const state: SessionState = {
    session,
    loading: query.isPending,
    isAdmin: session?.roles.includes('admin') ?? false,
    readsEverything: (session?.roles.includes('admin') || session?.roles.includes('auditor')) ?? false,
    refresh: async () => {
      await queryClient.invalidateQueries({ queryKey: ['session'] });
    },
    signOut: async () => {
      const result = await unwrap(api.POST('/api/v1/auth/logout'));
      setCsrfToken(null);
      queryClient.clear();
      if (result.logoutUrl) window.location.assign(result.logoutUrl);
      else window.location.assign('/');
    },
  };
  return <SessionContext.Provider value={state}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error('useSession outside SessionProvider');
  return state;
}
