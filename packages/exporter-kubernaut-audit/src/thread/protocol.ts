// SPDX-License-Identifier: Apache-2.0
/*
 * The messages between the application thread (ThreadedAuditLogRecordProcessor) and its
 * delivery thread (delivery-thread.ts). Plain data only (structured clone): the records cross
 * prepared (intake/prepare.ts), packed as a few flat buffers (pack.ts), not as objects.
 *
 * Invariants: messages of each direction are handled in the order sent; the delivery thread
 * handles a `records` message synchronously (its records are on the spool, or dead-lettered,
 * or counted as dropped, when it is done) and then stores the message's number in
 * `progress[0]` and notifies it: the application thread can wait for it without its event
 * loop (Atomics.wait: the `exit` handler, `sync` durability).
 */
import type { ResolvedProcessorConfig } from '../config/processor-options.ts';
import type { KubernautAuditExporterOptions } from '../exporter/kubernaut-audit-exporter.ts';
import type { PrepareCounts } from '../intake/prepare.ts';
import type { MetricsBatch } from './meter-bridge.ts';
import type { PackedItems } from './pack.ts';

/** The delivery thread's `workerData`. */
export interface ThreadStart {
  config: ResolvedProcessorConfig;
  /** The exporter to build there: none given (built from the config), a twin of one, or foreign. */
  exporter:
    | { kind: 'default' }
    | { kind: 'twin'; options: KubernautAuditExporterOptions }
    | { kind: 'foreign'; name: string };
  /**
   * Int32Array over a SharedArrayBuffer: [0] the number of the last records message handled,
   * [1] the number of seq blocks published in `seqBlock` (seq-blocks.ts), [2] 1 when the thread
   * could not load its modules (delivery-thread.ts), [3] 1 while the application thread's ask
   * for the next seq block is not served (PROGRESS_SEQ_ASKED).
   */
  progress: Int32Array;
  /** Float64Array over a SharedArrayBuffer: [first, last] of the last seq block published. */
  seqBlock: Float64Array;
  /** Seqs per block (0: no provenance, no blocks). */
  seqBlockSize: number;
  /** Test hook: the thread blocks this long after each batch it writes (0: never). */
  commitDelayMillis: number;
  /** Test hook: the module the entry loads instead of delivery-thread-main. */
  mainModule?: string;
  /** Test hook: how often leftover default spools are looked for (ms). */
  leftoverCheckMillis?: number;
}

/** Index of `progress` set to 1 when the delivery thread could not load its modules. */
export const PROGRESS_FAILED = 2;
/**
 * Index of `progress` the application thread sets to 1 when it asks for the next seq block. The
 * delivery thread serves it after the batch it is writing, not after the batches queued before
 * the `seqs` message: a thread that falls behind would otherwise hold emit() waiting for seqs.
 */
export const PROGRESS_SEQ_ASKED = 3;
/** Slots of `progress`. */
export const PROGRESS_SLOTS = 4;

export type ToThread =
  | {
      t: 'records';
      /** Message number (1, 2, 3 …), stored in progress[0] once handled. */
      n: number;
      /** The batch's records, prepared (mapped, validated, encoded up to the stamp), in order. */
      items: PackedItems;
      counts: PrepareCounts;
      /** How late the intake's timer-driven batches started since the last message (s). */
      drift: number[];
      /** Records the intake's inner queue could not take since the last message. */
      overflow: number;
    }
  | { t: 'flush'; id: number; timeoutMillis: number }
  /**
   * The application thread has used half of its seq block: publish the next (unless served
   * already, see PROGRESS_SEQ_ASKED).
   */
  | { t: 'seqs' }
  /** `lastSeq`: the last seq the application thread handed out (the rest are given back). */
  | { t: 'shutdown'; id: number; lastSeq: number };

export type FromThread =
  | { t: 'ready'; spoolKind: 'file' | 'memory' }
  | {
      t: 'diag';
      level: 'error' | 'warn' | 'info' | 'debug' | 'verbose';
      /** The component's name ('' for a line not of a component). */
      namespace: string;
      message: string;
    }
  | { t: 'metrics'; batch: MetricsBatch }
  | { t: 'flushed'; id: number; error?: { name: string; message: string } }
  | { t: 'shut'; id: number };
