import { stringify } from 'csv-stringify/sync';
import { PDFDocument, StandardFonts, type PDFFont, type PDFPage } from 'pdf-lib';
import type { ComplianceReport } from './compliance-reports.js';

/**
 * A compliance report as the files an auditor keeps: CSV (every row, one column per field) and a
 * PDF whose cover page states the period, the audit chain's head hash, the signed checkpoint
 * covering the period, the verification result and the config version, followed by the summary
 * and the rows.
 */

/** CSV: a header row, then one row per record; values as text (booleans true/false, nulls empty). */
export function reportCsv(report: ComplianceReport): string {
  return stringify(
    report.rows.map((row) => report.columns.map((c) => row[c] ?? null)),
    { header: true, columns: [...report.columns], cast: { boolean: (value) => (value ? 'true' : 'false') } },
  );
}

/** The standard PDF fonts encode WinAnsi only: anything else becomes "?" (the CSV keeps it exact). */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e\u00a0-\u00ff]/g, '?');
}

const A4 = [595.28, 841.89] as const;
const MARGIN = 50;

class Writer {
  private page: PDFPage;
  private y: number;
  constructor(
    private readonly doc: PDFDocument,
    private readonly font: PDFFont,
    private readonly bold: PDFFont,
  ) {
    this.page = doc.addPage([...A4]);
    this.y = A4[1] - MARGIN;
  }

  newPage(): void {
    this.page = this.doc.addPage([...A4]);
    this.y = A4[1] - MARGIN;
  }

  /** Writes text wrapped to the page width, starting a new page when this one is full. */
  line(text: string, options: { size?: number; bold?: boolean; indent?: number } = {}): void {
    const size = options.size ?? 9;
    const font = options.bold ? this.bold : this.font;
    const width = A4[0] - 2 * MARGIN - (options.indent ?? 0);
    let rest = printable(text);
    do {
      let cut = rest.length;
      while (cut > 1 && font.widthOfTextAtSize(rest.slice(0, cut), size) > width) cut = Math.floor(cut * 0.9);
      if (this.y < MARGIN + size) this.newPage();
      this.page.drawText(rest.slice(0, cut), { x: MARGIN + (options.indent ?? 0), y: this.y, size, font });
      this.y -= size * 1.4;
      rest = rest.slice(cut);
    } while (rest.length > 0);
  }

  gap(points = 8): void {
    this.y -= points;
  }
}

export async function reportPdf(report: ComplianceReport): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  doc.setTitle(`Lapse: ${report.title}`);
  doc.setCreator('Lapse');
  doc.setCreationDate(report.generatedAt);
  const w = new Writer(doc, await doc.embedFont(StandardFonts.Helvetica), await doc.embedFont(StandardFonts.HelveticaBold));
  const { cover } = report;

  w.line(report.title, { size: 18, bold: true });
  w.gap();
  w.line(`Period: ${report.from.toISOString()} to ${report.to.toISOString()} (end exclusive)`, { size: 11 });
  w.line(`Generated: ${report.generatedAt.toISOString()} by ${report.generatedBy}`, { size: 11 });
  w.gap(12);
  w.line('Audit chain', { size: 13, bold: true });
  w.line(`Head: seq ${cover.auditHead?.seq ?? 0}`);
  w.line(`Head hash: ${cover.auditHead?.hash ?? 'none (empty log)'}`);
  w.line(`Last event of the period: ${cover.periodEnd ? `seq ${cover.periodEnd.seq}` : 'none'}`);
  if (cover.periodEnd) w.line(`Last event hash: ${cover.periodEnd.hash}`);
  w.line(
    cover.checkpoint
      ? `Signed checkpoint covering it: seq ${cover.checkpoint.seq}, key ${cover.checkpoint.keyId}, signed ${cover.checkpoint.at}`
      : 'Signed checkpoint covering it: none yet (the next checkpoint will cover it)',
  );
  if (cover.checkpoint) w.line(`Checkpoint hash: ${cover.checkpoint.hash}`);
  if (cover.checkpoint) w.line(`Signature: ${cover.checkpoint.signature}`, { size: 7 });
  w.line(
    `Verification (lapse audit verify, now): ${cover.verify.ok ? 'OK' : 'FAILED'}; ${cover.verify.events} events; ${cover.verify.problems} problem(s)` +
      (cover.verify.checkpointKeyKnown ? '' : '; no checkpoint public key known, signatures unchecked'),
  );
  w.gap(12);
  w.line('Configuration', { size: 13, bold: true });
  w.line(`In force at the end of the period: ${cover.configVersion ?? 'unknown (loaded after the period)'}`);
  w.line(`In force now: ${cover.configVersionNow}`);
  w.gap(12);
  w.line('Summary', { size: 13, bold: true });
  for (const [key, value] of Object.entries(report.summary)) w.line(`${key}: ${value}`);
  if (report.truncated)
    w.line(`The period holds more rows than one report does; this one lists the first ${report.rows.length}. Narrow the period.`, { bold: true });

  w.newPage();
  w.line(`${report.title}: ${report.rows.length} row(s)`, { size: 13, bold: true });
  w.gap();
  report.rows.forEach((row, i) => {
    const [first, ...others] = report.columns;
    w.line(`${i + 1}. ${first}: ${String(row[first!] ?? '')}`, { bold: true });
    for (const c of others) {
      if (row[c] !== null && row[c] !== '') w.line(`${c}: ${String(row[c])}`, { indent: 12, size: 8 });
    }
    w.gap(3);
  });
  return doc.save();
}
