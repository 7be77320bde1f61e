// SPDX-License-Identifier: Apache-2.0
/* Human-readable rendering of a VerifyReport (the `--json` output is the report itself). */
import type { SeqRange, VerifyReport } from './analyze.ts';

function ranges(rs: readonly SeqRange[], max = 10): string {
  if (rs.length === 0) return '-';
  const parts = rs.slice(0, max).map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`));
  return rs.length > max ? `${parts.join(', ')}, … (${rs.length} ranges)` : parts.join(', ');
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  }
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const VERDICT_WORDS: Record<VerifyReport['verdict'], string> = {
  complete: 'COMPLETE',
  incomplete: 'INCOMPLETE',
  empty: 'NOTHING VERIFIED',
};

const records = (n: number): string => `${n} record${n === 1 ? '' : 's'}`;

/** Renders the report as text tables. */
export function formatReport(report: VerifyReport): string {
  const out: string[] = [];
  const t = report.totals;
  out.push(
    `Audit trail verification ${VERDICT_WORDS[report.verdict]}` +
      (report.window ? ` (events ${report.window.since} .. ${report.window.until})` : '') +
      (report.filter ? ` [${report.filter}]` : ''),
  );
  if (report.verdict === 'empty') {
    out.push(
      report.events_total === 0
        ? 'No audit event was found in this window: nothing was verified. Check --url (the DataStorage your services deliver to), --since/--until and --correlation-id.'
        : 'No event in this window carries provenance (event_data.audit_provenance): nothing was verified. Events delivered by AuditLogRecordProcessor carry it; is this the right DataStorage and window?',
    );
  }
  out.push(
    `events read: ${report.events_total}; producers: ${t.producers}; delivered: ${t.delivered}; missing: ${t.missing}; ` +
      `duplicates: ${t.duplicates}; chain breaks: ${t.chain_breaks}; out of order: ${t.out_of_order}; ` +
      `rejected (dead letters): ${t.rejected}; replayed: ${t.replayed}; unaccounted at crashes: ${t.crash_unaccounted}; ` +
      `without provenance: ${report.without_provenance.count}` +
      (report.malformed_provenance.count > 0
        ? `; MALFORMED PROVENANCE: ${report.malformed_provenance.count}`
        : ''),
  );
  if (report.missing_producers.length > 0) {
    out.push(
      `EXPECTED PRODUCERS ABSENT (not one record read): ${report.missing_producers.join(', ')}`,
    );
  }
  if (report.signatures_checked || t.truncated > 0) {
    out.push(
      `signatures: ${report.signatures_checked ? 'checked' : 'not checked (no --public-key)'}; problems: ${t.signature_problems}; altered ranges: ${t.altered_ranges}; unsigned records: ${t.unsigned}; missing after the last digest head: ${t.truncated}`,
    );
  }
  for (const p of report.producers) {
    out.push('');
    out.push(
      `producer ${p.producer_id}: seq ${p.first_seq}..${p.last_seq}, ${p.delivered} delivered (${p.records_seen} stored), ` +
        `${p.complete ? 'complete' : 'INCOMPLETE'}`,
    );
    const rows: string[][] = [
      ['session', 'seqs', 'records', 'gaps', 'dups', 'breaks', 'reordered'],
    ];
    for (const s of p.sessions) {
      rows.push([
        s.session_id,
        `${s.first_seq}..${s.last_seq}`,
        String(s.records),
        String(s.gaps),
        String(s.duplicates),
        String(s.chain_breaks),
        String(s.out_of_order),
      ]);
    }
    out.push(table(rows).replace(/^/gm, '  '));
    out.push(
      p.gaps_judged
        ? `  lost seqs (gaps):     ${ranges(p.gaps)}${p.missing ? ` (${records(p.missing)})` : ''}`
        : `  seqs not in view:     ${ranges(p.gaps)} (filtered view: may be in other correlations)`,
    );
    out.push(
      `  duplicated seqs:      ${
        p.duplicates_count === 0
          ? '-'
          : `${p.duplicates_count} seq(s): ${p.duplicates
              .slice(0, 10)
              .map((d) => `${d.seq}×${d.event_ids.length}${d.conflicting ? ' (conflicting)' : ''}`)
              .join(', ')}${p.duplicates_count > 10 ? ', …' : ''}`
      }`,
    );
    out.push(
      `  rejected seqs:        ${ranges(p.rejected)}${p.rejected_count ? ` (${records(p.rejected_count)}, dead-lettered)` : ''}${p.replayed ? `; replayed: ${p.replayed}` : ''}`,
    );
    for (const w of p.crash_windows) {
      out.push(
        `  unaccounted at a crash of session ${w.session_id}: seqs ${w.from}-${w.to}, up to ${w.unaccounted} record(s) lost (reserved, never spooled; declared by session ${w.declared_by})`,
      );
    }
    const sg = p.signatures;
    if (sg !== undefined) {
      out.push(
        `  signed heads:         ${sg.verified} of ${sg.heads} verified${sg.keys.length ? ` (keys ${sg.keys.join(', ')})` : ''}; unsigned seqs: ${ranges(sg.unsigned)}${report.signatures_checked ? '' : ' (no --public-key: not judged)'}`,
      );
      for (const a of sg.altered) out.push(`  ALTERED: ${a.detail}`);
      if (sg.truncated) {
        out.push(
          `  TRUNCATED: seqs ${sg.truncated.from}-${sg.truncated.to} missing after the last record read back (digest log head at seq ${sg.truncated.to}, ${sg.truncated.head_time})`,
        );
      }
      for (const h of sg.problems.slice(0, 20)) {
        out.push(
          `  bad signature: ${h.source} head at seq ${h.seq}${h.event_id ? ` (event ${h.event_id})` : ''}: ${h.reason}`,
        );
      }
    }
    if (p.chain_breaks_count > 20)
      out.push(`  chain breaks: ${p.chain_breaks_count} (first 20 below)`);
    for (const b of p.chain_breaks.slice(0, 20)) {
      out.push(`  chain break seq ${b.seq} (${b.kind}) event ${b.event_id}: ${b.detail}`);
    }
    for (const o of p.out_of_order.slice(0, 5)) {
      out.push(
        `  out of order: seq ${o.seq} at ${o.event_timestamp} is earlier than seq ${o.previous_seq} at ${o.previous_timestamp}`,
      );
    }
  }
  if (report.without_provenance.count > 0) {
    out.push('');
    out.push(`events without provenance: ${report.without_provenance.count}`);
    for (const e of report.without_provenance.events.slice(0, 20)) {
      out.push(
        `  ${e.event_id}  ${e.event_type ?? ''}  ${e.correlation_id ?? ''}  ${e.event_timestamp ?? ''}`,
      );
    }
  }
  if (report.malformed_provenance.count > 0) {
    out.push('');
    out.push(
      `events whose provenance stamp is malformed: ${report.malformed_provenance.count} (altered or corrupted after it was written)`,
    );
    for (const e of report.malformed_provenance.events.slice(0, 20)) {
      out.push(
        `  ${e.event_id}  ${e.event_type ?? ''}  ${e.correlation_id ?? ''}  ${e.event_timestamp ?? ''}`,
      );
    }
  }
  if (report.server_chains.length > 0) {
    const bad = report.server_chains.filter((c) => !c.is_valid);
    out.push('');
    out.push(
      `DataStorage chains (verify-chain): ${report.server_chains.length - bad.length} valid, ${bad.length} invalid`,
    );
    for (const c of bad.slice(0, 20)) {
      out.push(
        `  ${c.correlation_id}: ${c.error ?? `${c.tampered_events ?? 0} problem(s): ${c.message ?? ''}`}`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}
