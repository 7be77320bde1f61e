// SPDX-License-Identifier: Apache-2.0
/* Small decisions of the composer: where dead letters go, what recovery found for provenance. */
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import type { ResolvedProcessorConfig } from '../config/processor-options.ts';
import {
  deliveryDepsOf,
  type KubernautAuditExporter,
} from '../exporter/kubernaut-audit-exporter.ts';
import type { SpoolTail } from '../provenance/index.ts';
import { exporterDeliverer } from '../send/exporter-deliverer.ts';
import { FrameDeliverer } from '../send/frame-deliverer.ts';
import type { AuditDeliverer } from '../send/types.ts';
import { DEAD_LETTER_FILE, type DeadLetterFile } from '../spool/dead-letter.ts';
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
 * The deliverer of the processor's sender: frame bytes over the exporter's transport (the
 * exporter is not modified); for a misconfigured exporter, its own delivery, which keeps the
 * records pending and reports why.
 */
export function delivererFor(
  exporter: KubernautAuditExporter,
  deadLetters: DeadLetterFile,
): AuditDeliverer {
  const deps = deliveryDepsOf(exporter);
  return deps === undefined ? exporterDeliverer(exporter) : new FrameDeliverer(deps, deadLetters);
}
