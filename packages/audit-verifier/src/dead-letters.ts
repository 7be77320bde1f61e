// SPDX-License-Identifier: Apache-2.0
/*
 * Reading dead-letter files (JSON lines written by the exporter's DeadLetterFile) and their replay
 * sidecar `<file>.replayed.jsonl`, which `kubernaut-audit dead-letters replay` appends to:
 *
 *   {"time":"…","action":"replayed","producer_id":"…","session_id":"…","seq":N,
 *    "original_hash":"…"|null,"hash":"…","fixed":false,"status":201,"line":L}
 *
 * The provenance of a dead letter is read from `event.event_data.audit_provenance` (an event
 * stamped and later rejected: it has a hash and is part of the chain) or from
 * `event.audit_provenance` (a record rejected at emit, see ProvenanceStamper.reserveRejected:
 * no hash, not part of the chain).
 */

import { appendFileSync } from 'node:fs';
import { asProvenance } from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import { readRegularFileSync } from '@kubernaut/audit-spool-format';
import type { DeadLetterRecord, ReplayRecord } from './analyze.ts';

/** One parsed line of a dead-letter file. */
export interface ParsedDeadLetter {
  /** 1-based line number in the file. */
  line: number;
  time: string;
  reason: string;
  detail: string;
  status?: number;
  event: unknown;
  /** Provenance, when the record had one. `hash` is null for records rejected at emit. */
  provenance?: { producer_id: string; session_id: string; seq: number; hash: string | null };
  /** True when `event` is a complete AuditEventRequest (it can be replayed as is). */
  replayable: boolean;
}

export interface DeadLetterFile {
  path: string;
  entries: ParsedDeadLetter[];
  /** Lines that are not dead-letter entries (torn last line, garbage). */
  malformed: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The sidecar that records replays of a dead-letter file. */
export function replaySidecarPath(deadLetterPath: string): string {
  return `${deadLetterPath}.replayed.jsonl`;
}

/** Reads a dead-letter file. Throws a clear error when it cannot be read. */
export function readDeadLetterFile(path: string): DeadLetterFile {
  let text: string;
  try {
    text = readRegularFileSync(path).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read dead-letter file ${path}: ${(err as Error).message}`);
  }
  const entries: ParsedDeadLetter[] = [];
  let malformed = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(raw);
    } catch {
      malformed++;
      continue;
    }
    if (!isObject(o) || typeof o.reason !== 'string' || !('event' in o)) {
      malformed++;
      continue;
    }
    entries.push(parseEntry(i + 1, o));
  }
  return { path, entries, malformed };
}

function parseEntry(line: number, o: Record<string, unknown>): ParsedDeadLetter {
  const event = o.event;
  let provenance: ParsedDeadLetter['provenance'];
  let replayable = false;
  if (isObject(event)) {
    const data = event.event_data;
    // A stamped event carries its provenance in event_data; a record rejected at emit carries
    // the seq it consumed beside it (no hash: it is not part of the chain).
    const stamped = isObject(data);
    if (stamped) {
      replayable = typeof event.event_type === 'string' && typeof event.correlation_id === 'string';
    }
    const p = asProvenance((stamped ? data : event)[AUDIT_EVENT_DATA_PROVENANCE_KEY]);
    if (p) {
      provenance = {
        producer_id: p.producer_id,
        session_id: p.session_id,
        seq: p.seq,
        hash: stamped ? p.hash || null : null,
      };
    }
  }
  return {
    line,
    time: typeof o.time === 'string' ? o.time : '',
    reason: o.reason as string,
    detail: typeof o.detail === 'string' ? o.detail : '',
    ...(typeof o.status === 'number' ? { status: o.status } : {}),
    event,
    ...(provenance ? { provenance } : {}),
    replayable,
  };
}

/** The dead letters of a file as the analysis takes them (those with provenance). */
export function deadLetterRecords(file: DeadLetterFile): DeadLetterRecord[] {
  const out: DeadLetterRecord[] = [];
  for (const e of file.entries) {
    if (!e.provenance) continue;
    out.push({ ...e.provenance, reason: e.reason, ...(e.time ? { time: e.time } : {}) });
  }
  return out;
}

/** Reads the replay sidecar of a dead-letter file; none yet → []. */
export function readReplays(deadLetterPath: string): ReplayRecord[] {
  let text: string;
  try {
    text = readRegularFileSync(replaySidecarPath(deadLetterPath)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot read ${replaySidecarPath(deadLetterPath)}: ${(err as Error).message}`);
  }
  const out: ReplayRecord[] = [];
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    try {
      const o = JSON.parse(raw) as Record<string, unknown>;
      if (o.action !== 'replayed' || typeof o.producer_id !== 'string' || typeof o.seq !== 'number')
        continue;
      if (typeof o.hash !== 'string') continue;
      out.push({
        producer_id: o.producer_id,
        session_id: typeof o.session_id === 'string' ? o.session_id : '',
        seq: o.seq,
        original_hash: typeof o.original_hash === 'string' ? o.original_hash : null,
        hash: o.hash,
        fixed: o.fixed === true,
        ...(typeof o.time === 'string' ? { time: o.time } : {}),
      });
    } catch {
      // a torn line: ignored
    }
  }
  return out;
}

/** Line numbers of the dead-letter file recorded as replayed in the sidecar. */
export function readReplayedLines(deadLetterPath: string): Set<number> {
  const out = new Set<number>();
  let text: string;
  try {
    text = readRegularFileSync(replaySidecarPath(deadLetterPath)).toString('utf8');
  } catch {
    return out;
  }
  for (const raw of text.split('\n')) {
    try {
      const o = JSON.parse(raw) as Record<string, unknown>;
      if (o.action === 'replayed' && typeof o.line === 'number') out.add(o.line);
    } catch {
      // empty or torn line
    }
  }
  return out;
}

/**
 * Appends replay records to the sidecar (one write). Entries without provenance are recorded
 * by their line only (`producer_id` absent): replay skips them later, the analysis ignores them.
 */
export function appendReplays(
  deadLetterPath: string,
  records: ReadonlyArray<(ReplayRecord | { time?: string }) & { status: number; line: number }>,
): void {
  if (records.length === 0) return;
  const text = records
    .map((r) =>
      JSON.stringify({ time: r.time ?? new Date().toISOString(), action: 'replayed', ...r }),
    )
    .join('\n');
  appendFileSync(replaySidecarPath(deadLetterPath), `${text}\n`, { mode: 0o600 });
}
