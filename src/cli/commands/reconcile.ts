import type { Command } from 'commander';
import { EXIT, LapseError } from '../../domain/errors.js';
import { NAME_PATTERN } from '../../domain/input-schemas.js';
import type { Finding, ReconcileReport } from '../../engine/index.js';
import { addLocationOptions, resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';

/**
 * `lapse reconcile [target]`: compares what each target really has with what Lapse granted, once,
 * straight on the database (the server need not run), and prints the findings.
 * Exit codes: 0 no drift; 1 drift found (standing or missing access, including standing access
 * this run removed); 5 a target could not be listed (and no drift found elsewhere).
 */
export function registerReconcileCommand(program: Command): void {
  addLocationOptions(program.command('reconcile [target]'))
    .description('find standing access Lapse did not grant and granted access that is missing (exit 0 clean, 1 drift, 5 a target could not be listed)')
    .option('--remediate', "remove standing access no live grant covers, even where the target's reconcile.remediate is off")
    .action(
      action(async (targetName: string | undefined, options: { config?: string; dataDir?: string; remediate?: boolean }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        if (targetName !== undefined && !NAME_PATTERN.test(targetName)) {
          throw new LapseError('validation_failed', `"${targetName.slice(0, 80)}" is not a target name`, {
            where: 'target',
            hint: 'Target names are lower-case letters, digits, "_", "." and "-".',
          });
        }
        const { openRuntime } = await import('../runtime.js');
        const runtime = await openRuntime(resolveLocation(options));
        try {
          const reports = await runtime.engine.reconcile(targetName, {
            actor: `cli:${process.env.USER ?? 'unknown'}`,
            ...(options.remediate ? { remediate: true } : {}),
          });
          emit(globals, { reports: reports.map(toJson) }, () => reports.map(describe).join('\n'));
          if (reports.some((r) => r.findings.length > 0)) return EXIT.failed;
          return reports.some((r) => r.error !== null) ? EXIT.unavailable : EXIT.ok;
        } finally {
          await runtime.close();
        }
      }),
    );
}

function toJson(report: ReconcileReport) {
  return { ...report, startedAt: report.startedAt.toISOString(), finishedAt: report.finishedAt.toISOString(), findings: report.findings.map(findingJson) };
}

export function findingJson(finding: Finding) {
  const iso = (date: Date | null) => date?.toISOString() ?? null;
  return {
    ...finding,
    firstSeenAt: finding.firstSeenAt.toISOString(),
    lastSeenAt: finding.lastSeenAt.toISOString(),
    resolvedAt: iso(finding.resolvedAt),
    remediatedAt: iso(finding.remediatedAt),
  };
}

/**
 * Names come from the target (role names, user names): shown with control characters escaped, so
 * a hostile name cannot rewrite the operator's terminal.
 */
export function shown(text: string): string {
  // eslint-disable-next-line no-control-regex -- the point is to find control characters
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function describe(report: ReconcileReport): string {
  if (report.error !== null) return `${report.target}: could not list the target: ${shown(report.error)}`;
  const standing = report.findings.filter((f) => f.kind === 'standing');
  const missing = report.findings.filter((f) => f.kind === 'missing');
  const lines = [
    `${report.target}: ${report.listed} listed, ${report.covered} covered by grants; ${standing.length} standing, ${missing.length} missing` +
      ` (${report.opened} new, ${report.resolved} resolved, ${report.remediated} removed${report.remediate ? '' : '; remediation off'})`,
  ];
  for (const f of report.findings) {
    const label = f.status === 'remediated' ? 'REMOVED ' : f.kind === 'standing' ? 'STANDING' : 'MISSING ';
    const who = shown(f.account === f.principalId ? f.account : `${f.account} (principal ${f.principalId})`);
    const why = f.kind === 'missing' ? `grant ${f.grantId}` : shown(String(f.detail.reason ?? ''));
    const kept = f.status === 'open' && typeof f.detail.keep === 'string' ? `; not removed: ${f.detail.keep}` : '';
    const failed = f.status === 'open' && typeof f.detail.remediationError === 'string' ? `; removal failed: ${shown(f.detail.remediationError)}` : '';
    lines.push(`  ${label}  ${f.target}/${shown(f.entitlement)}  ${who}  ${why}, since ${f.firstSeenAt.toISOString()}  [${f.id}]${kept}${failed}`);
  }
  return lines.join('\n');
}
