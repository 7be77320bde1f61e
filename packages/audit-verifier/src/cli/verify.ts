// SPDX-License-Identifier: Apache-2.0
/* `kubernaut-audit verify`: reads a trail back from DataStorage and reports its completeness. */

import { writeFileSync } from 'node:fs';
import { keyIdOf } from '@kubernaut/audit-provenance';
import {
  analyze,
  type DeadLetterRecord,
  type ReplayRecord,
  type ServerChainResult,
} from '../analyze.ts';
import { DataStorageReader, DEFAULT_MAX_EVENTS } from '../client.ts';
import { deadLetterRecords, readDeadLetterFile, readReplays } from '../dead-letters.ts';
import { formatReport } from '../format.ts';
import { htmlReport, markdownReport } from '../report.ts';
import {
  defineCommand,
  EXIT_CODE_USAGE,
  EXIT_EMPTY,
  EXIT_INCOMPLETE,
  EXIT_OK,
  UsageError,
} from './command.ts';
import {
  DEFAULT_TIMEOUT_MILLIS,
  parseTimeOption,
  parseTimeoutOption,
  readToken,
  requireUrl,
} from './options.ts';
import { count, startProgress } from './progress.ts';
import { readDigestLogs, readPublicKeys } from './trust.ts';

/** Chain checks run this many at a time. */
const CHAIN_CHECKS_IN_PARALLEL = 8;

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 'is the audit trail in DataStorage complete and unaltered?',
  synopsis: [
    '--url URL [--since 24h|RFC3339] [--until RFC3339] [--correlation-id X]',
    ' [--dead-letters FILE ...] [--bearer-token-file F] [--timeout 30s] [--max-events N] [--json]',
    ' [--public-key FILE[@FROM] ...] [--digest-log FILE ...] [--expect-producer ID ...]',
    ' [--report FILE.md|FILE.html]',
  ],
  options: {
    url: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    'correlation-id': { type: 'string' },
    'dead-letters': { type: 'string', multiple: true },
    json: { type: 'boolean' },
    'bearer-token-file': { type: 'string' },
    timeout: { type: 'string' },
    'max-events': { type: 'string' },
    'public-key': { type: 'string', multiple: true },
    'digest-log': { type: 'string', multiple: true },
    'expect-producer': { type: 'string', multiple: true },
    report: { type: 'string' },
  },
  optionHelp: [
    ['--url URL', 'DataStorage base URL (required)'],
    ['--since 24h|RFC3339', 'window start [24h]; durations ms s m h d, e.g. 90m, 7d'],
    ['--until RFC3339', 'window end [now + 61 min: DataStorage accepts timestamps 60 min ahead]'],
    ['--correlation-id X', 'only that correlation (gaps are then listed, not judged)'],
    ['--dead-letters FILE', 'a dead-letter file (repeatable); its .replayed.jsonl sidecar too'],
    ['--bearer-token-file F', 'token for DataStorage; never printed'],
    ['--timeout DURATION', `per request to DataStorage [${DEFAULT_TIMEOUT_MILLIS / 1000}s]`],
    [
      '--max-events N',
      `most events one run reads (all are held in memory) [${DEFAULT_MAX_EVENTS.toLocaleString('en-US')}]; a window with more is an error`,
    ],
    ['--json', 'the full report as JSON instead of tables'],
    [
      '--public-key FILE[@FROM]',
      'Ed25519 public key (PEM) that signs chain heads, valid from FROM (RFC 3339) [always]; repeatable (rotation). Then every signature is checked and unsigned records fail',
    ],
    [
      '--digest-log FILE',
      "a producer's <spool>/digest.log (repeatable; also digest.log.1): its producers are expected, and records missing after its newest head are reported",
    ],
    ['--expect-producer ID', 'a producer id that must appear (repeatable)'],
    ['--report FILE', 'also write the one-page report an auditor files (.md Markdown, .html HTML)'],
  ],
  exitCodes: [
    [EXIT_OK, 'COMPLETE: events with provenance were read; no gap, duplicate or chain break'],
    [
      EXIT_INCOMPLETE,
      'INCOMPLETE: a gap, a duplicate, a chain break, a malformed provenance stamp, an invalid DataStorage chain, an altered or unsigned record (with --public-key), a truncated tail (with --digest-log) or an expected producer absent',
    ],
    EXIT_CODE_USAGE,
    [
      EXIT_EMPTY,
      'NOTHING VERIFIED: no event with provenance in the window (wrong URL, window or filter?)',
    ],
  ],
  async run({ values }, { io, now }) {
    const url = requireUrl(values.url);
    const since = parseTimeOption(values.since ?? '24h', now, '--since');
    // DataStorage accepts timestamps up to 60 min in the future: look that far ahead by default.
    const until =
      values.until === undefined
        ? new Date(now + 61 * 60_000)
        : parseTimeOption(values.until, now, '--until');
    if (until.getTime() < since.getTime()) throw new UsageError('--until is before --since');
    const timeoutMillis = parseTimeoutOption(values.timeout, DEFAULT_TIMEOUT_MILLIS);
    const maxEvents = parseMaxEvents(values['max-events']);
    const token = readToken(values['bearer-token-file']);
    const reportFile = values.report;
    if (reportFile !== undefined && !/\.(md|markdown|html?)$/i.test(reportFile)) {
      throw new UsageError('--report: the file name must end in .md or .html');
    }
    const publicKeys = readPublicKeys(values['public-key'] ?? []);
    const digestFiles = values['digest-log'] ?? [];
    const digest = readDigestLogs(digestFiles);
    for (const m of digest.malformed)
      io.stderr(`kubernaut-audit: ${m.file}: ${m.lines} malformed line(s) ignored\n`);
    const expectProducers = values['expect-producer'] ?? [];

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
      timeoutMillis,
      maxEvents,
      ...(token !== undefined ? { bearerToken: token } : {}),
    });
    const correlationId = values['correlation-id'];
    // On a terminal: how far the reading and the chain checks are (nothing when piped).
    const progress = startProgress(io);
    let read: Awaited<ReturnType<DataStorageReader['readEvents']>>;
    const chains: ServerChainResult[] = [];
    try {
      read = await reader.readEvents({
        since,
        until,
        ...(correlationId !== undefined ? { correlationId } : {}),
        onProgress: (p) =>
          progress.update(
            () =>
              `reading events from DataStorage: ${count(p.read)} of ${count(p.total)} (${count(p.requests)} requests)`,
          ),
      });
      const correlations = new Set<string>();
      for (const e of read.events)
        if (typeof e.correlation_id === 'string') correlations.add(e.correlation_id);
      const ids = [...correlations].sort();
      for (let i = 0; i < ids.length; i += CHAIN_CHECKS_IN_PARALLEL) {
        const batch = ids.slice(i, i + CHAIN_CHECKS_IN_PARALLEL);
        chains.push(...(await Promise.all(batch.map((c) => reader.verifyChain(c)))));
        progress.update(
          () =>
            `checking DataStorage's hash chains: ${count(chains.length)} of ${count(ids.length)} correlations (${count(read.events.length)} events read)`,
        );
      }
    } finally {
      progress.done();
    }
    for (const w of read.warnings) io.stderr(`kubernaut-audit: warning: ${w}\n`);

    const report = analyze({
      events: read.events,
      deadLetters,
      replays,
      serverChains: chains,
      window: { since: since.toISOString(), until: until.toISOString() },
      ...(correlationId !== undefined ? { filter: `correlation_id=${correlationId}` } : {}),
      now: new Date(now),
      publicKeys,
      digestHeads: digest.heads,
      expectProducers,
    });
    io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    if (reportFile !== undefined) {
      const ctx = {
        url,
        keys: publicKeys.map(
          (k) => `${keyIdOf(k.key)} (${k.name ?? '?'}${k.from ? `, valid from ${k.from}` : ''})`,
        ),
        digestLogs: digestFiles,
        expectProducers,
      };
      const page = /\.html?$/i.test(reportFile)
        ? htmlReport(report, ctx)
        : markdownReport(report, ctx);
      try {
        writeFileSync(reportFile, page);
      } catch (err) {
        throw new Error(
          `cannot write --report ${reportFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    }
    return report.verdict === 'complete'
      ? EXIT_OK
      : report.verdict === 'empty'
        ? EXIT_EMPTY
        : EXIT_INCOMPLETE;
  },
});

/** `--max-events`: a whole number of at least 1 [DEFAULT_MAX_EVENTS]. */
function parseMaxEvents(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_EVENTS;
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(
      `--max-events: expected a whole number of at least 1, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}
