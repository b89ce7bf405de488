import '@mantine/core/styles.css';
import { MantineProvider, createTheme } from '@mantine/core';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { App } from './App';
import { SessionProvider } from './api/session';
import { StepUpProvider } from './components/StepUp';

const theme = createTheme({ primaryColor: 'blue', defaultRadius: 'md' });

const queryClient = new QueryClient({
  defaultOptions: {
    // NB. Live updates come over /api/v1/events; refetching on focus would only add load.
    queries: { staleTime: 15_000, refetchOnWindowFocus: false, retry: (count, error) => count < 2 && !(error instanceof Error && 'problem' in error) },
  },
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="light">
      <QueryClientProvider client={queryClient}>
        <BrowserRouter>
          <SessionProvider>
            <StepUpProvider>
              <App />
            </StepUpProvider>
          </SessionProvider>
        </BrowserRouter>
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
