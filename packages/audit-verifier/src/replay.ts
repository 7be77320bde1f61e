// SPDX-License-Identifier: Apache-2.0
/*
 * Replay of dead letters (after an operator fixed the cause): selected entries are POSTed to
 * /api/v1/audit/events/batch (≤ 500 per request) and each replay is recorded in the sidecar
 * `<file>.replayed.jsonl`, so that the verifier counts the seq as delivered by replay.
 *
 * A corrected event (from `fixed`) keeps the dead letter's provenance (producer, session,
 * seq, prev_hash) and gets its hash recomputed over the corrected content; the sidecar keeps
 * the original hash, which the next record's prev_hash still links to. An event rejected at
 * emit (no AuditEventRequest in the dead letter) can only be replayed from `fixed`.
 */

import { computeProvenanceHash, readProvenance } from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import {
  AUDIT_EVENTS_BATCH_PATH,
  type AuditEventRequest,
  MAX_BATCH_EVENTS,
} from '@kubernaut/datastorage-contract';
import type { ReplayRecord } from './analyze.ts';
import { AnswerTooLargeError, readText } from './client.ts';
import {
  appendReplays,
  type ParsedDeadLetter,
  readDeadLetterFile,
  readReplayedLines,
  readReplays,
} from './dead-letters.ts';

/** The longest batch answer read (event ids of 500 events, or a problem, are far smaller). */
const MAX_BATCH_ANSWER_BYTES = 1024 * 1024;

export interface ReplayOptions {
  /** The dead-letter file. */
  file: string;
  /** DataStorage base URL. */
  url: string;
  bearerToken?: string;
  /** Seqs to replay (matched against the dead letters' provenance). */
  seqs?: readonly number[];
  /** Replay every replayable entry not replayed yet. */
  all?: boolean;
  /** Corrected events; each carries the provenance (producer_id, seq) of the dead letter it fixes. */
  fixed?: readonly AuditEventRequest[];
  timeoutMillis?: number;
  /** Told after each request: dead letters replayed so far, of those to send. */
  onProgress?: (progress: { replayed: number; total: number }) => void;
}

export interface ReplayOutcome {
  replayed: Array<{ line: number; producer_id?: string; seq?: number; fixed: boolean }>;
  skipped: Array<{ line: number; seq?: number; reason: string }>;
  /** Set when a request failed: entries from that request on were not replayed. */
  error?: string;
}

interface Planned {
  entry: ParsedDeadLetter;
  event: AuditEventRequest;
  fixed: boolean;
  record?: ReplayRecord;
}

/** Plans and sends a replay. Throws (with a clear message) on bad input; never prints tokens. */
export async function replayDeadLetters(options: ReplayOptions): Promise<ReplayOutcome> {
  const file = readDeadLetterFile(options.file);
  const done = new Set(readReplays(options.file).map((r) => `${r.producer_id}/${r.seq}`));
  const doneLines = readReplayedLines(options.file);
  const fixedBy = new Map<string, AuditEventRequest>();
  for (const ev of options.fixed ?? []) {
    const p = readProvenance(ev);
    if (p === undefined) {
      throw new Error(
        `a corrected event has no event_data.${AUDIT_EVENT_DATA_PROVENANCE_KEY} {producer_id, seq}: keep the provenance of the dead letter it fixes`,
      );
    }
    fixedBy.set(`${p.producer_id}/${p.seq}`, ev);
  }

  let selected: ParsedDeadLetter[];
  if (options.all) {
    selected = file.entries;
  } else {
    const wanted = new Set(options.seqs ?? []);
    if (wanted.size === 0)
      throw new Error('choose dead letters with --seq N (repeatable) or --all');
    selected = file.entries.filter(
      (e) => e.provenance !== undefined && wanted.has(e.provenance.seq),
    );
    const found = new Set(selected.map((e) => e.provenance?.seq));
    const missing = [...wanted].filter((s) => !found.has(s));
    if (missing.length > 0)
      throw new Error(`no dead letter with seq ${missing.join(', ')} in ${options.file}`);
  }

  const outcome: ReplayOutcome = { replayed: [], skipped: [] };
  const plan: Planned[] = [];
  for (const entry of selected) {
    const prov = entry.provenance;
    const key = prov ? `${prov.producer_id}/${prov.seq}` : undefined;
    if ((key !== undefined && done.has(key)) || doneLines.has(entry.line)) {
      outcome.skipped.push({ line: entry.line, seq: prov?.seq, reason: 'already replayed' });
      continue;
    }
    const fix = key !== undefined ? fixedBy.get(key) : undefined;
    if (fix !== undefined && prov !== undefined) {
      const original = readProvenance(entry.event);
      const provenance = {
        producer_id: prov.producer_id,
        session_id: prov.session_id,
        seq: prov.seq,
        prev_hash: original?.prev_hash ?? null,
      };
      const event: AuditEventRequest = {
        ...fix,
        event_data: { ...fix.event_data, [AUDIT_EVENT_DATA_PROVENANCE_KEY]: provenance },
      };
      const hash = computeProvenanceHash(event as unknown as Record<string, unknown>);
      (event.event_data[AUDIT_EVENT_DATA_PROVENANCE_KEY] as Record<string, unknown>).hash = hash;
      plan.push({
        entry,
        event,
        fixed: true,
        record: { ...provenance, original_hash: prov.hash, hash, fixed: true },
      });
    } else if (entry.replayable) {
      const event = entry.event as AuditEventRequest;
      plan.push({
        entry,
        event,
        fixed: false,
        ...(prov && prov.hash !== null
          ? {
              record: {
                producer_id: prov.producer_id,
                session_id: prov.session_id,
                seq: prov.seq,
                original_hash: prov.hash,
                hash: prov.hash,
                fixed: false,
              },
            }
          : {}),
      });
    } else {
      outcome.skipped.push({
        line: entry.line,
        seq: prov?.seq,
        reason: 'rejected at emit: supply the corrected event with --fixed',
      });
    }
  }

  const base = options.url.replace(/\/+$/, '');
  for (let i = 0; i < plan.length; i += MAX_BATCH_EVENTS) {
    const chunk = plan.slice(i, i + MAX_BATCH_EVENTS);
    let status: number;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (options.bearerToken !== undefined)
        headers.authorization = `Bearer ${options.bearerToken}`;
      const res = await fetch(`${base}${AUDIT_EVENTS_BATCH_PATH}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(chunk.map((p) => p.event)),
        signal: AbortSignal.timeout(options.timeoutMillis ?? 30_000),
      });
      status = res.status;
      // A batch answer is small (event ids, or a problem): a longer one is not read on.
      const text = await readText(res, MAX_BATCH_ANSWER_BYTES);
      if (status !== 201 && status !== 202) {
        let detail = text.slice(0, 300);
        try {
          const p = JSON.parse(text) as { detail?: unknown };
          if (typeof p.detail === 'string') detail = p.detail;
        } catch {
          // not JSON
        }
        outcome.error = `POST ${AUDIT_EVENTS_BATCH_PATH} answered ${status}: ${detail}`;
        break;
      }
    } catch (err) {
      outcome.error =
        err instanceof AnswerTooLargeError
          ? `POST ${AUDIT_EVENTS_BATCH_PATH} answered with more than ${err.limit} bytes: not recorded as replayed (verify shows whether the events were stored)`
          : `cannot reach DataStorage at ${base}: ${(err as Error).message}`;
      break;
    }
    const time = new Date().toISOString();
    appendReplays(
      options.file,
      chunk.map((p) => ({ time, ...(p.record ?? {}), status, line: p.entry.line })),
    );
    for (const p of chunk) {
      outcome.replayed.push({
        line: p.entry.line,
        ...(p.entry.provenance
          ? { producer_id: p.entry.provenance.producer_id, seq: p.entry.provenance.seq }
          : {}),
        fixed: p.fixed,
      });
    }
    options.onProgress?.({ replayed: Math.min(i + chunk.length, plan.length), total: plan.length });
  }
  return outcome;
}
