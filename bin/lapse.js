#!/usr/bin/env node
// The `lapse` command. The TypeScript sources are compiled to dist/ by `npm install` (prepare).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('lapse: dist/ is missing; run `npm install` (or `npm run build`) first.\n');
  process.exit(70);
}
await import(entry.href);
