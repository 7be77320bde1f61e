// SPDX-License-Identifier: Apache-2.0
/*
 * The one-page report an auditor files (`verify --report FILE.md|FILE.html`): what was verified
 * (DataStorage, window, keys, digest logs), the verdict, one row per producer, and the findings.
 * Pure: a VerifyReport and its context in, the page out. HTML is escaped; Markdown table cells
 * have `|` escaped.
 */
import type { ProducerReport, SeqRange, VerifyReport } from './analyze.ts';

export interface ReportContext {
  url?: string;
  /** `key_id (file, valid from …)` lines. */
  keys: string[];
  digestLogs: string[];
  expectProducers: string[];
}

const VERDICT: Record<VerifyReport['verdict'], string> = {
  complete: 'COMPLETE',
  incomplete: 'INCOMPLETE',
  empty: 'NOTHING VERIFIED',
};

function ranges(rs: ReadonlyArray<{ from: number; to: number }>, max = 8): string {
  if (rs.length === 0) return '-';
  const parts = rs.slice(0, max).map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`));
  return rs.length > max ? `${parts.join(', ')}, … (${rs.length} ranges)` : parts.join(', ');
}

function row(p: ProducerReport, signed: boolean): string[] {
  const s = p.signatures;
  return [
    p.producer_id,
    String(p.sessions.length),
    `${p.first_seq}..${p.last_seq}`,
    String(p.delivered),
    p.gaps_judged ? ranges(p.gaps as SeqRange[]) : `${ranges(p.gaps as SeqRange[])} (not judged)`,
    String(p.duplicates_count),
    String(p.chain_breaks_count),
    s ? `${s.verified}/${s.heads}` : signed ? '0/0' : 'not checked',
    s ? (signed ? String(s.unsigned_count) : `${s.unsigned_count} (no key)`) : '-',
    s ? ranges(s.altered) : '-',
    s?.truncated ? `${s.truncated.from}-${s.truncated.to}` : '-',
    p.complete ? 'complete' : 'INCOMPLETE',
  ];
}

const HEADER = [
  'producer',
  'sessions',
  'seqs',
  'delivered',
  'missing seqs',
  'duplicates',
  'chain breaks',
  'verified heads',
  'unsigned',
  'altered',
  'truncated tail',
  'result',
];

function findings(r: VerifyReport): string[] {
  const out: string[] = [];
  for (const m of r.missing_producers) {
    out.push(`Producer ${m} was expected and not one of its records was read.`);
  }
  for (const p of r.producers) {
    const s = p.signatures;
    for (const a of s?.altered ?? []) out.push(`Producer ${p.producer_id}: ${a.detail}.`);
    if (s?.truncated) {
      out.push(
        `Producer ${p.producer_id}: records ${s.truncated.from}-${s.truncated.to} are missing after the last record read back; the digest log holds a signed head at seq ${s.truncated.to} (${s.truncated.head_time}).`,
      );
    }
    for (const h of (s?.problems ?? []).slice(0, 10)) {
      out.push(
        `Producer ${p.producer_id}: the ${h.source === 'record' ? 'signature on' : 'digest-log head of'} seq ${h.seq}${h.event_id ? ` (event ${h.event_id})` : ''} does not verify: ${h.reason}.`,
      );
    }
    if (r.signatures_checked && s && s.unsigned_count > 0) {
      out.push(
        `Producer ${p.producer_id}: ${s.unsigned_count} record(s) are covered by no verified signature (seqs ${ranges(s.unsigned)}).`,
      );
    }
    if (p.gaps_judged && p.missing > 0) {
      out.push(`Producer ${p.producer_id}: ${p.missing} record(s) lost (seqs ${ranges(p.gaps)}).`);
    }
    for (const b of p.chain_breaks.slice(0, 10)) {
      out.push(
        `Producer ${p.producer_id}: chain break at seq ${b.seq} (event ${b.event_id}): ${b.detail}.`,
      );
    }
    if (p.duplicates_count > 0) {
      out.push(`Producer ${p.producer_id}: ${p.duplicates_count} seq(s) stored more than once.`);
    }
  }
  const bad = r.server_chains.filter((c) => !c.is_valid);
  if (bad.length > 0)
    out.push(`DataStorage's own chain is invalid for ${bad.length} correlation(s).`);
  if (r.malformed_provenance.count > 0) {
    const ids = r.malformed_provenance.events.slice(0, 10).map((e) => e.event_id || '?');
    out.push(
      `${r.malformed_provenance.count} event(s) carry a malformed provenance stamp (altered or corrupted after it was written): ${ids.join(', ')}.`,
    );
  }
  if (out.length === 0) out.push('None.');
  return out;
}

function facts(r: VerifyReport, ctx: ReportContext): Array<[string, string]> {
  return [
    ['Verdict', VERDICT[r.verdict]],
    ['Generated', r.generated_at],
    ['DataStorage', ctx.url ?? '-'],
    ['Window', r.window ? `${r.window.since} .. ${r.window.until}` : '-'],
    ...(r.filter ? [['Filter', r.filter] as [string, string]] : []),
    ['Events read', String(r.events_total)],
    ['Public keys', ctx.keys.length > 0 ? ctx.keys.join('; ') : 'none: signatures not checked'],
    ['Digest logs', ctx.digestLogs.length > 0 ? ctx.digestLogs.join('; ') : 'none'],
    [
      'Expected producers',
      ctx.expectProducers.length > 0 ? ctx.expectProducers.join(', ') : 'those of the digest logs',
    ],
  ];
}

const md = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** The report as one Markdown page. */
export function markdownReport(r: VerifyReport, ctx: ReportContext): string {
  const out = [`# Audit trail verification: ${VERDICT[r.verdict]}`, ''];
  for (const [k, v] of facts(r, ctx)) out.push(`- **${k}**: ${md(v)}`);
  out.push('', '## Producers', '');
  out.push(`| ${HEADER.join(' | ')} |`, `|${HEADER.map(() => '---').join('|')}|`);
  for (const p of r.producers) out.push(`| ${row(p, r.signatures_checked).map(md).join(' | ')} |`);
  for (const m of r.missing_producers) {
    out.push(`| ${md(m)} | 0 | - | 0 | - | - | - | - | - | - | - | MISSING |`);
  }
  out.push('', '## Findings', '');
  for (const f of findings(r)) out.push(`- ${md(f)}`);
  out.push('');
  return out.join('\n');
}

const esc = (s: string) =>
  s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');

/** The report as one self-contained HTML page (no script, no external resource). */
export function htmlReport(r: VerifyReport, ctx: ReportContext): string {
  const title = `Audit trail verification: ${VERDICT[r.verdict]}`;
  const rows = r.producers.map(
    (p) =>
      `<tr>${row(p, r.signatures_checked)
        .map((c) => `<td>${esc(c)}</td>`)
        .join('')}</tr>`,
  );
  for (const m of r.missing_producers) {
    rows.push(
      `<tr><td>${esc(m)}</td>${'<td>-</td>'.repeat(HEADER.length - 2)}<td>MISSING</td></tr>`,
    );
  }
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(title)}</title>`,
    '<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px 8px;text-align:left}</style>',
    '</head><body>',
    `<h1>${esc(title)}</h1>`,
    '<dl>',
    ...facts(r, ctx).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`),
    '</dl>',
    '<h2>Producers</h2>',
    `<table><thead><tr>${HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>`,
    ...rows,
    '</tbody></table>',
    '<h2>Findings</h2>',
    '<ul>',
    ...findings(r).map((f) => `<li>${esc(f)}</li>`),
    '</ul>',
    '</body></html>',
    '',
  ].join('\n');
}
