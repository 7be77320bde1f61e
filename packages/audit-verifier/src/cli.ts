// SPDX-License-Identifier: Apache-2.0
/*
 * `kubernaut-audit`: completeness evidence for audit trails delivered to DataStorage.
 *
 *   kubernaut-audit verify --url URL [--since 24h|RFC3339] [--until RFC3339]
 *       [--correlation-id X] [--dead-letters FILE ...] [--json] [--bearer-token-file F]
 *   kubernaut-audit dead-letters list --file F [--json]
 *   kubernaut-audit dead-letters replay --file F --url URL [--seq N ...|--all] [--fixed FILE]
 *       [--bearer-token-file F]
 *
 * Exit codes: 0 complete / done; 1 incomplete trail (gap, duplicate, chain break, invalid
 * DataStorage chain) or a failed replay; 2 usage or operational error (message on stderr).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { errorText, parseNumber, parseTime } from '@kubernaut/datastorage-contract/config';
import { TokenFile } from '@kubernaut/datastorage-contract/http';
import {
  analyze,
  type DeadLetterRecord,
  type ReplayRecord,
  type ServerChainResult,
} from './analyze.ts';
import { DataStorageReader } from './client.ts';
import { deadLetterRecords, readDeadLetterFile, readReplays } from './dead-letters.ts';
import { formatReport } from './format.ts';
import { replayDeadLetters } from './replay.ts';

/** Where the CLI writes. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Clock for relative `--since` [Date.now]. */
  now?: () => number;
}

/** Exit code of a complete run. */
export const EXIT_OK = 0;
/** Exit code of an incomplete trail or a failed replay. */
export const EXIT_INCOMPLETE = 1;
/** Exit code of a usage or operational error. */
export const EXIT_USAGE = 2;

const USAGE = `usage:
  kubernaut-audit verify --url URL [--since 24h|RFC3339] [--until RFC3339] [--correlation-id X]
                         [--dead-letters FILE ...] [--json] [--bearer-token-file F]
  kubernaut-audit dead-letters list --file F [--json]
  kubernaut-audit dead-letters replay --file F --url URL [--seq N ...|--all] [--fixed FILE]
                         [--bearer-token-file F]
`;

class UsageError extends Error {}

/** `24h`, `90m`, `7d`, `1h30m` before now, or an RFC 3339 date-time. */
export function parseTimeOption(text: string, now: number, option: string): Date {
  const t = parseTime(text, now);
  if (t !== undefined) return new Date(t);
  throw new UsageError(
    `${option}: expected a duration such as 24h or an RFC 3339 time, got ${JSON.stringify(text)}`,
  );
}

/** The bearer token in `path` (the contract's token-file rules: trimmed, empty is an error here). */
function readToken(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let t: string | undefined;
  try {
    t = new TokenFile(path).load();
  } catch (err) {
    throw new UsageError(
      `cannot read --bearer-token-file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  if (t === undefined) throw new UsageError(`--bearer-token-file ${path} is empty`);
  return t;
}

function requireUrl(url: string | undefined): string {
  if (url === undefined || url === '') throw new UsageError('--url is required');
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new UsageError(`--url: not an http(s) URL: ${url}`);
  }
  return url;
}

/** Runs the CLI with `args` (without node and script). Resolves to the exit code; never throws. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const [command, sub] = args;
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      io.stdout(USAGE);
      return command === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (command === 'verify') return await verify(args.slice(1), io);
    if (command === 'dead-letters') {
      if (sub === 'list') return deadLettersList(args.slice(2), io);
      if (sub === 'replay') return await deadLettersReplay(args.slice(2), io);
      throw new UsageError(
        `dead-letters: unknown subcommand ${sub === undefined ? '(none)' : JSON.stringify(sub)}`,
      );
    }
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  } catch (err) {
    io.stderr(`kubernaut-audit: ${errorText(err)}\n`);
    if (err instanceof UsageError || isParseArgsError(err)) io.stderr(USAGE);
    return EXIT_USAGE;
  }
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

async function verify(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      url: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      'correlation-id': { type: 'string' },
      'dead-letters': { type: 'string', multiple: true },
      json: { type: 'boolean' },
      'bearer-token-file': { type: 'string' },
    },
    allowPositionals: false,
    strict: true,
  });
  const url = requireUrl(values.url);
  const now = (io.now ?? Date.now)();
  const since = parseTimeOption(values.since ?? '24h', now, '--since');
  // DataStorage accepts timestamps up to 60 min in the future: look that far ahead by default.
  const until =
    values.until === undefined
      ? new Date(now + 61 * 60_000)
      : parseTimeOption(values.until, now, '--until');
  if (until.getTime() < since.getTime()) throw new UsageError('--until is before --since');
  const token = readToken(values['bearer-token-file']);

  const deadLetters: DeadLetterRecord[] = [];
  const replays: ReplayRecord[] = [];
  for (const f of values['dead-letters'] ?? []) {
    const file = readDeadLetterFile(f);
    deadLetters.push(...deadLetterRecords(file));
    replays.push(...readReplays(f));
    if (file.malformed > 0)
      io.stderr(`kubernaut-audit: ${f}: ${file.malformed} malformed line(s) ignored\n`);
  }

  const reader = new DataStorageReader({
    url,
    ...(token !== undefined ? { bearerToken: token } : {}),
  });
  const read = await reader.readEvents({
    since,
    until,
    ...(values['correlation-id'] !== undefined ? { correlationId: values['correlation-id'] } : {}),
  });
  for (const w of read.warnings) io.stderr(`kubernaut-audit: warning: ${w}\n`);

  const correlations = new Set<string>();
  for (const e of read.events)
    if (typeof e.correlation_id === 'string') correlations.add(e.correlation_id);
  const chains: ServerChainResult[] = [];
  const ids = [...correlations].sort();
  // A few chain checks at a time.
  for (let i = 0; i < ids.length; i += 8) {
    chains.push(...(await Promise.all(ids.slice(i, i + 8).map((c) => reader.verifyChain(c)))));
  }

  const report = analyze({
    events: read.events,
    deadLetters,
    replays,
    serverChains: chains,
    window: { since: since.toISOString(), until: until.toISOString() },
    ...(values['correlation-id'] !== undefined
      ? { filter: `correlation_id=${values['correlation-id']}` }
      : {}),
    now: new Date(now),
  });
  io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.complete ? EXIT_OK : EXIT_INCOMPLETE;
}

function deadLettersList(args: readonly string[], io: CliIo): number {
  const { values } = parseArgs({
    args: [...args],
    options: { file: { type: 'string' }, json: { type: 'boolean' } },
    allowPositionals: false,
    strict: true,
  });
  if (values.file === undefined) throw new UsageError('--file is required');
  const file = readDeadLetterFile(values.file);
  const replayed = new Set(readReplays(values.file).map((r) => `${r.producer_id}/${r.seq}`));
  const rows = file.entries.map((e) => {
    const ev = (e.event ?? {}) as Record<string, unknown>;
    const record = (ev.record ?? {}) as Record<string, unknown>;
    return {
      line: e.line,
      time: e.time,
      reason: e.reason,
      ...(e.status !== undefined ? { status: e.status } : {}),
      producer_id: e.provenance?.producer_id ?? null,
      seq: e.provenance?.seq ?? null,
      event_type:
        typeof ev.event_type === 'string'
          ? ev.event_type
          : typeof record.eventName === 'string'
            ? record.eventName
            : null,
      correlation_id: typeof ev.correlation_id === 'string' ? ev.correlation_id : null,
      replayable: e.replayable,
      replayed:
        e.provenance !== undefined &&
        replayed.has(`${e.provenance.producer_id}/${e.provenance.seq}`),
      detail: e.detail,
    };
  });
  if (values.json) {
    io.stdout(
      `${JSON.stringify({ file: values.file, entries: rows, malformed: file.malformed }, null, 2)}\n`,
    );
    return EXIT_OK;
  }
  const lines = [
    `${rows.length} dead letter(s) in ${values.file}${file.malformed ? ` (${file.malformed} malformed line(s))` : ''}`,
  ];
  for (const r of rows) {
    const detail = r.detail.length > 100 ? `${r.detail.slice(0, 97)}...` : r.detail;
    lines.push(
      `  line ${r.line}  seq ${r.seq ?? '-'}  ${r.reason}${r.status !== undefined ? ` ${r.status}` : ''}  ${r.event_type ?? '-'}  ` +
        `${r.correlation_id ?? '-'}  ${r.replayed ? 'replayed' : r.replayable ? 'replayable' : 'needs --fixed'}  ${detail}`,
    );
  }
  io.stdout(`${lines.join('\n')}\n`);
  return EXIT_OK;
}

function readFixed(path: string): AuditEventRequest[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read --fixed ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  const trimmed = text.trim();
  const isObj = (v: unknown): v is AuditEventRequest =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  try {
    const v = JSON.parse(trimmed) as unknown;
    if (Array.isArray(v) && v.every(isObj)) return v;
    if (isObj(v)) return [v];
  } catch {
    // JSON lines below
  }
  const out: AuditEventRequest[] = [];
  for (const [i, line] of trimmed.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (!isObj(v)) throw new Error('not an object');
      out.push(v);
    } catch {
      throw new UsageError(
        `--fixed ${path}: line ${i + 1} is not a JSON event (expected a JSON array, an object or JSON lines)`,
      );
    }
  }
  return out;
}

async function deadLettersReplay(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      file: { type: 'string' },
      url: { type: 'string' },
      seq: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      fixed: { type: 'string' },
      json: { type: 'boolean' },
      'bearer-token-file': { type: 'string' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (values.file === undefined) throw new UsageError('--file is required');
  const url = requireUrl(values.url);
  if (values.all && values.seq) throw new UsageError('use either --seq or --all, not both');
  if (!values.all && !values.seq)
    throw new UsageError('choose dead letters with --seq N (repeatable) or --all');
  const seqs = (values.seq ?? []).map((s) => {
    const seq = parseNumber(s, { integer: true, min: 1 });
    if (seq === undefined)
      throw new UsageError(`--seq: not a positive integer: ${JSON.stringify(s)}`);
    return seq;
  });
  const token = readToken(values['bearer-token-file']);
  const fixed = values.fixed !== undefined ? readFixed(values.fixed) : undefined;
  const outcome = await replayDeadLetters({
    file: values.file,
    url,
    ...(token !== undefined ? { bearerToken: token } : {}),
    ...(values.all ? { all: true } : { seqs }),
    ...(fixed ? { fixed } : {}),
  });
  if (values.json) {
    io.stdout(`${JSON.stringify(outcome, null, 2)}\n`);
  } else {
    const lines = [
      `replayed ${outcome.replayed.length} dead letter(s); skipped ${outcome.skipped.length}`,
    ];
    for (const r of outcome.replayed)
      lines.push(`  replayed line ${r.line} seq ${r.seq ?? '-'}${r.fixed ? ' (fixed)' : ''}`);
    for (const s of outcome.skipped)
      lines.push(`  skipped line ${s.line} seq ${s.seq ?? '-'}: ${s.reason}`);
    io.stdout(`${lines.join('\n')}\n`);
  }
  if (outcome.error !== undefined) {
    io.stderr(`kubernaut-audit: ${outcome.error}\n`);
    return EXIT_INCOMPLETE;
  }
  return EXIT_OK;
}
