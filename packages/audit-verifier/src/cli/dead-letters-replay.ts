// SPDX-License-Identifier: Apache-2.0
/* `kubernaut-audit dead-letters replay`: sends chosen dead letters again, recording each replay. */
import { readRegularFileSync } from '@kubernaut/audit-spool-format';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { parseNumber } from '@kubernaut/datastorage-contract/config';
import { replayDeadLetters } from '../replay.ts';
import { defineCommand, EXIT_CODE_USAGE, EXIT_INCOMPLETE, EXIT_OK, UsageError } from './command.ts';
import { DEFAULT_TIMEOUT_MILLIS, parseTimeoutOption, readToken, requireUrl } from './options.ts';
import { count, startProgress } from './progress.ts';

/** Corrected events: a JSON array, one object, or JSON lines. */
function readFixed(path: string): AuditEventRequest[] {
  let text: string;
  try {
    text = readRegularFileSync(path).toString('utf8');
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

export const deadLettersReplayCommand = defineCommand({
  name: 'dead-letters replay',
  summary: 'sends dead letters to DataStorage again (after the cause was fixed) and records it',
  synopsis: [
    'FILE --url URL (--seq N ... | --all) [--fixed FILE]',
    ' [--bearer-token-file F] [--timeout 30s] [--json]',
  ],
  options: {
    file: { type: 'string' },
    url: { type: 'string' },
    seq: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    fixed: { type: 'string' },
    json: { type: 'boolean' },
    'bearer-token-file': { type: 'string' },
    timeout: { type: 'string' },
  },
  optionHelp: [
    ['FILE, --file FILE', 'the dead-letter file'],
    ['--url URL', 'DataStorage base URL (required)'],
    ['--seq N', 'replay the dead letter of this seq (repeatable)'],
    ['--all', 'replay every replayable dead letter not replayed yet'],
    ['--fixed FILE', 'corrected events (JSON array, object or JSON lines), matched by provenance'],
    ['--bearer-token-file F', 'token for DataStorage; never printed'],
    ['--timeout DURATION', `per request to DataStorage [${DEFAULT_TIMEOUT_MILLIS / 1000}s]`],
    ['--json', 'the outcome as JSON'],
  ],
  positionals: { name: 'FILE', max: 1 },
  exitCodes: [
    [EXIT_OK, 'every chosen dead letter was replayed or skipped (already replayed, needs --fixed)'],
    [EXIT_INCOMPLETE, 'a replay request failed: the entries from it on were not replayed'],
    EXIT_CODE_USAGE,
  ],
  async run({ values, positionals }, { io }) {
    if (values.file !== undefined && positionals.length > 0)
      throw new UsageError('give the file once: as an argument or with --file');
    const file = values.file ?? positionals[0];
    if (file === undefined) throw new UsageError('which file? (dead-letters replay FILE ...)');
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
    const timeoutMillis = parseTimeoutOption(values.timeout, DEFAULT_TIMEOUT_MILLIS);
    const token = readToken(values['bearer-token-file']);
    const fixed = values.fixed !== undefined ? readFixed(values.fixed) : undefined;
    // On a terminal: how many are sent so far (nothing when piped).
    const progress = startProgress(io);
    let outcome: Awaited<ReturnType<typeof replayDeadLetters>>;
    try {
      outcome = await replayDeadLetters({
        file,
        url,
        timeoutMillis,
        ...(token !== undefined ? { bearerToken: token } : {}),
        ...(values.all ? { all: true } : { seqs }),
        ...(fixed ? { fixed } : {}),
        onProgress: (p) =>
          progress.update(
            () => `replaying dead letters: ${count(p.replayed)} of ${count(p.total)} sent`,
          ),
      });
    } finally {
      progress.done();
    }
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
  },
});
