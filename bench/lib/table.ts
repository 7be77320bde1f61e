// SPDX-License-Identifier: Apache-2.0
/* Markdown tables for the terminal and for RESULTS.md. */
import type { ScenarioResult, Table } from './result.ts';

export function renderTable(t: Table): string {
  const widths = t.headers.map((h, i) =>
    Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  // Numeric columns (most cells start with a digit) are right-aligned, text left-aligned.
  const numeric = t.headers.map(
    (_, i) => i > 0 && t.rows.filter((r) => /^[\d.]/.test(r[i] ?? '')).length * 2 > t.rows.length,
  );
  const sep = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [`**${t.title}**`, '', line(t.headers), sep, ...t.rows.map(line)].join('\n');
}

export function renderScenario(r: ScenarioResult): string {
  const parts = [`### ${r.title}`, ''];
  for (const t of r.tables) parts.push(renderTable(t), '');
  for (const n of r.notes) parts.push(`- ${n}`);
  parts.push(
    `- ${r.quick ? 'QUICK run (reduced sizes). ' : ''}Took ${r.seconds} s; 1-min load average ${r.load.start} at start, ${r.load.end} at end.`,
  );
  return parts.join('\n');
}
