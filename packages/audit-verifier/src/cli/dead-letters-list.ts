// SPDX-License-Identifier: Apache-2.0
/* `kubernaut-audit dead-letters list`: what a dead-letter file holds, one line per entry. */
import {
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_EVENT_TYPE,
} from '@kubernaut/audit-semantic-conventions';
import { readDeadLetterFile, readReplays } from '../dead-letters.ts';
import { defineCommand, EXIT_CODE_USAGE, EXIT_OK, UsageError } from './command.ts';

/** Longest detail shown in the text listing (the JSON listing has it whole). */
const DETAIL_CHARS = 100;

export const deadLettersListCommand = defineCommand({
  name: 'dead-letters list',
  summary: 'lists the dead letters of a file, with their seqs and whether they can be replayed',
  synopsis: ['FILE [--json]', '--file FILE [--json]'],
  options: { file: { type: 'string' }, json: { type: 'boolean' } },
  optionHelp: [
    ['FILE, --file FILE', 'the dead-letter file (e.g. <spool directory>/dead-letter.jsonl)'],
    ['--json', 'the entries as JSON'],
  ],
  positionals: { name: 'FILE', max: 1 },
  exitCodes: [[EXIT_OK, 'listed'], EXIT_CODE_USAGE],
  run({ values, positionals }, { io }) {
    if (values.file !== undefined && positionals.length > 0)
      throw new UsageError('give the file once: as an argument or with --file');
    const path = values.file ?? positionals[0];
    if (path === undefined) throw new UsageError('which file? (dead-letters list FILE)');
    const file = readDeadLetterFile(path);
    const replayed = new Set(readReplays(path).map((r) => `${r.producer_id}/${r.seq}`));
    const rows = file.entries.map((e) => {
      const ev = (e.event ?? {}) as Record<string, unknown>;
      // A record that could not be mapped is kept as a snapshot of the OTel record: its event
      // type is its event name (else audit.event.type), its correlation id an attribute.
      const record = objectOr(ev.record);
      const attributes = objectOr(record.attributes);
      return {
        line: e.line,
        time: e.time,
        reason: e.reason,
        ...(e.status !== undefined ? { status: e.status } : {}),
        producer_id: e.provenance?.producer_id ?? null,
        seq: e.provenance?.seq ?? null,
        event_type:
          text(ev.event_type) ??
          text(record.event_name) ??
          text(record.eventName) ??
          text(attributes[ATTR_AUDIT_EVENT_TYPE]) ??
          null,
        correlation_id:
          text(ev.correlation_id) ?? text(attributes[ATTR_AUDIT_CORRELATION_ID]) ?? null,
        replayable: e.replayable,
        replayed:
          e.provenance !== undefined &&
          replayed.has(`${e.provenance.producer_id}/${e.provenance.seq}`),
        detail: e.detail,
      };
    });
    if (values.json) {
      io.stdout(
        `${JSON.stringify({ file: path, entries: rows, malformed: file.malformed }, null, 2)}\n`,
      );
      return EXIT_OK;
    }
    const lines = [
      `${rows.length} dead letter(s) in ${path}${file.malformed ? ` (${file.malformed} malformed line(s))` : ''}`,
    ];
    for (const r of rows) {
      const detail =
        r.detail.length > DETAIL_CHARS ? `${r.detail.slice(0, DETAIL_CHARS - 3)}...` : r.detail;
      lines.push(
        `  line ${r.line}  seq ${r.seq ?? '-'}  ${r.reason}${r.status !== undefined ? ` ${r.status}` : ''}  ${r.event_type ?? '-'}  ` +
          `${r.correlation_id ?? '-'}  ${r.replayed ? 'replayed' : r.replayable ? 'replayable' : 'needs --fixed'}  ${detail}`,
      );
    }
    io.stdout(`${lines.join('\n')}\n`);
    return EXIT_OK;
  },
});

/** `v` when it is a non-empty string. */
function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** `v` when it is a plain object (not an array), else an empty one. */
function objectOr(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}
