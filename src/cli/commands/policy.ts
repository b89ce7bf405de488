import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { EXIT, LapseError } from '../../domain/errors.js';
import { resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('test and explain policies');
  policy
    .command('test [cases]')
    .description('run policy test cases (YAML) against the config; exit 1 if any fails')
    .option('-c, --config <file>', 'config file (env LAPSE_CONFIG, default ./lapse.yaml)')
    .action(
      action(async (casesPath: string | undefined, options: { config?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { configPath } = resolveLocation(options);
        const path = casesPath ?? 'policy-tests.yaml';
        const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
          throw new LapseError('validation_failed', `cannot read ${path}: ${error.code ?? error.message}`, {
            where: path,
            hint: 'Pass the cases file as the argument.',
          });
        });
        const { loadConfigFile, parsePolicyCases, runPolicyCases } = await import('../../config/index.js');
        const config = await loadConfigFile(configPath);
        const results = runPolicyCases(config, parsePolicyCases(text, path));
        const failed = results.filter((r) => !r.passed);
        emit(globals, { passed: results.length - failed.length, failed: failed.length, results }, () => {
          const lines = results.map((r) => `${r.passed ? 'PASS' : 'FAIL'}  ${r.name}`);
          for (const r of failed) {
            lines.push('', `FAIL  ${r.name}`);
            for (const key of new Set([...Object.keys(r.expected), ...Object.keys(r.actual)])) {
              const want = JSON.stringify(r.expected[key]);
              const got = JSON.stringify(r.actual[key]);
              if (want !== got) lines.push(`  ${key}:`, `    - expected ${want}`, `    + actual   ${got}`);
            }
            lines.push(`  reasons: ${r.reasons.join('; ')}`);
          }
          lines.push('', `${results.length - failed.length} passed, ${failed.length} failed`);
          return lines.join('\n');
        });
        return failed.length === 0 ? EXIT.ok : EXIT.failed;
      }),
    );

  policy
    .command('explain')
    .description('who may get what, on what terms')
    .option('-c, --config <file>', 'config file (env LAPSE_CONFIG, default ./lapse.yaml)')
    .option('--principal <id>', 'only what this principal is eligible for')
    .option('--groups <list>', "the principal's groups, comma-separated", '')
    .action(
      action(async (options: { config?: string; principal?: string; groups: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const [{ loadConfigFile }, { explainPolicies }] = await Promise.all([import('../../config/index.js'), import('../../domain/policy/index.js')]);
        const config = await loadConfigFile(resolveLocation(options).configPath);
        const entitlements = [...config.targets.values()].flatMap((t) => [...t.entitlements.keys()].map((name) => ({ target: t.name, name })));
        const principal = options.principal
          ? {
              id: options.principal,
              groups: options.groups
                .split(',')
                .map((g) => g.trim())
                .filter(Boolean),
            }
          : undefined;
        const terms = explainPolicies(config.policies, entitlements, principal);
        emit(globals, { principal: principal ?? null, terms }, () => {
          if (terms.length === 0) return principal ? `${principal.id} is not eligible for anything` : 'no policy grants anything';
          const lines: string[] = [];
          for (const t of terms) {
            const who = [...t.subjects.users.map((u) => `user ${u}`), ...t.subjects.groups.map((g) => `group ${g}`)].join(', ');
            lines.push(`${t.entitlement}  (policy ${t.policy})`);
            lines.push(`  who:       ${who}`);
            lines.push(`  duration:  default ${t.defaultDuration}, max ${t.maxDuration}`);
            lines.push(`  approval:  ${t.approval}`);
            if (t.requirements.length > 0) lines.push(`  requires:  ${t.requirements.join('; ')}`);
            if (t.conditions) lines.push(`  only if:   ${t.conditions}`);
            if (t.lookups.length > 0) lines.push(`  looks up:  ${t.lookups.join(', ')} (at request time)`);
          }
          return lines.join('\n');
        });
      }),
    );
}
