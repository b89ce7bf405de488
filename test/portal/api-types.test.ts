import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateApiTypes, SCHEMA_FILE } from '../../web/scripts/api-types.js';

describe("the portal's and the CLI's API types (one generated file)", () => {
  it('match the OpenAPI document the server serves now (run `npm run web:api-types` when this fails)', async () => {
    const current = await generateApiTypes();
    for (const [file, name] of [[SCHEMA_FILE, 'src/api/openapi-types.d.ts']] as const) {
      const committed = readFileSync(file, 'utf8');
      // NB. Not toEqual on the whole text: a 9,000-line diff helps nobody; say which paths changed.
      if (committed !== current) {
        const paths = (text: string) => new Set([...text.matchAll(/^ {4}"(\/[^"]*)": \{$/gm)].map((m) => m[1]));
        const before = paths(committed);
        const after = paths(current);
        const added = [...after].filter((p) => !before.has(p));
        const removed = [...before].filter((p) => !after.has(p));
        expect.fail(
          `${name} is stale: run \`npm run web:api-types\` and commit it (paths added: ${added.join(', ') || 'none'}; removed: ${removed.join(', ') || 'none'}; otherwise a schema changed)`,
        );
      }
    }
    expect(current).toContain('"/api/v1/requests/{id}/reviews"');
  }, 120_000); // builds the server and generates ~9,000 lines of types: over 30 s on a loaded 2-core machine
});
