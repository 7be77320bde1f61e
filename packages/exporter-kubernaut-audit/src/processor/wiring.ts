// SPDX-License-Identifier: Apache-2.0
/* Small decisions of the composer: where dead letters go, what recovery found for provenance. */
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import type { ResolvedProcessorConfig } from '../config/processor-options.ts';
import {
  createAuditDeliverer,
  type ExporterDeliverer,
  type KubernautAuditExporter,
} from '../exporter/kubernaut-audit-exporter.ts';
import type { SpoolTail } from '../provenance/index.ts';
import type { EventOutcome, OutgoingBatch } from '../send/types.ts';
import { DEAD_LETTER_FILE, type DeadLetter, type DeadLetterFile } from '../spool/dead-letter.ts';
import type { Spool } from '../spool/spool.ts';

/**
 * The dead-letter file belongs to the spool's lock holder: `deadLetter.path`, else
 * `<spool directory>/dead-letter.jsonl`. A process without the lock (or without a spool
 * directory) writes its own file, `….<session>.jsonl`, beside it, or under the OS tmpdir.
 */
export function deadLetterPathFor(
  cfg: ResolvedProcessorConfig,
  spool: Spool,
  session: string,
): string {
  const dir = spool.directory;
  const main = cfg.deadLetter.path ?? (dir === undefined ? undefined : join(dir, DEAD_LETTER_FILE));
  if (spool.kind === 'file' && main !== undefined) return main;
  const own = (p: string) => {
    const ext = extname(p);
    return join(dirname(p), `${basename(p, ext)}.${session}${ext || '.jsonl'}`);
  };
  if (main !== undefined) return own(main);
  return join(tmpdir(), 'kubernaut-audit', `dead-letter.${session}.jsonl`);
}

/** The highest provenance seq recovery found on the spool, with its record's hash. */
export function spoolTailOf(spool: Spool): SpoolTail | undefined {
  const t = spool.recoveredTail;
  if (t === undefined) return undefined;
  let hash: string | null = null;
  try {
    const e = JSON.parse(t.json ?? 'null') as {
      event_data?: Record<string, { hash?: unknown }>;
    } | null;
    const h = e?.event_data?.[AUDIT_EVENT_DATA_PROVENANCE_KEY]?.hash;
    if (typeof h === 'string') hash = h;
  } catch {
    hash = null;
  }
  return { provSeq: t.provSeq, hash };
}

/**
 * The deliverer of the processor's sender: the exporter's (its URL, credentials, TLS and retry
 * settings; the exporter is not modified), dead letters into the processor's file with their
 * provenance kept. For an exporter of another copy of this package, a deliverer that sends
 * nothing: the records wait in the spool (the composer reports why).
 */
export function delivererFor(
  exporter: KubernautAuditExporter,
  usable: boolean,
  deadLetters: () => DeadLetterFile,
): ExporterDeliverer {
  if (!usable) return { destination: undefined, deliver: waitForAbort };
  return createAuditDeliverer(exporter, {
    deadLetters: {
      write: async (entries) =>
        deadLetters().write(entries.map((e) => ({ ...e, provenance: provenanceOf(e.event) }))),
    },
  });
}

function waitForAbort(batch: OutgoingBatch, options: { signal: AbortSignal }) {
  const pending = (): EventOutcome[] => batch.seqs.map(() => 'pending');
  return new Promise<EventOutcome[]>((resolve) => {
    if (options.signal.aborted) resolve(pending());
    else options.signal.addEventListener('abort', () => resolve(pending()), { once: true });
  });
}

/** `{producer_id, session_id, seq}` of an event's provenance, so that a dead letter keeps it. */
function provenanceOf(event: unknown): DeadLetter['provenance'] {
  const data = (event as { event_data?: unknown } | null)?.event_data;
  if (data === null || typeof data !== 'object') return undefined;
  const p = Object.getOwnPropertyDescriptor(data, AUDIT_EVENT_DATA_PROVENANCE_KEY)?.value as
    | { producer_id?: unknown; session_id?: unknown; seq?: unknown }
    | undefined;
  if (
    typeof p?.producer_id !== 'string' ||
    typeof p.session_id !== 'string' ||
    typeof p.seq !== 'number'
  ) {
    return undefined;
  }
  return { producer_id: p.producer_id, session_id: p.session_id, seq: p.seq };
}
