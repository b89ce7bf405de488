import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The portal's build: web/ is the root, output in web/dist (served by src/api/routes/portal.ts).
 * `npm run web:dev` proxies the API to a `lapse serve` on :8080 for development.
 */
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // NB. No inline <script>: the portal's CSP allows scripts from files on our origin only.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1200,
    sourcemap: false,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080', '/auth': 'http://127.0.0.1:8080' } },
});
