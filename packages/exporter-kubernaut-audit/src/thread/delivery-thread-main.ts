// SPDX-License-Identifier: Apache-2.0
/*
 * The delivery thread of ThreadedAuditLogRecordProcessor (a `worker_threads` worker, loaded by
 * its entry, delivery-thread.ts): an ordinary AuditLogRecordProcessor (spool, recovery, sender, deliverer, provenance, dead
 * letters) that takes the application thread's batches of prepared records and commits them
 * (seq, stamp, hash, one spool write, dead letters: intake/drain.ts commit()).
 *
 * Invariants: a `records` message is written to the spool before the next message is handled,
 * then its number is published in progress[0] (protocol.ts); diag lines go to the application
 * thread's diag logger; metrics go to its MeterProvider (meter-bridge.ts) at least once a
 * second and before every answer to a flush or a shutdown; after the processor is shut down
 * the thread closes its port and ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api';
import { KubernautAuditExporter } from '../exporter/kubernaut-audit-exporter.ts';
import {
  AuditLogRecordProcessor,
  commitPrepared,
  seqsOf,
} from '../processor/audit-log-record-processor.ts';
import { withProcessorInternals } from '../processor/internals.ts';
import { MetricsRecorder } from './meter-bridge.ts';
import { unpack } from './pack.ts';
import {
  type FromThread,
  PROGRESS_SEQ_ASKED,
  type ThreadStart,
  type ToThread,
} from './protocol.ts';

if (parentPort === null) throw new Error('delivery-thread-main.ts runs as a worker thread only');
const port = parentPort;
const start = workerData as ThreadStart;
const post = (m: FromThread) => port.postMessage(m);

// Component loggers call the logger with their namespace first: it travels apart, so that the
// application thread can route the line as its own components' lines are routed.
const forward =
  (level: Extract<FromThread, { t: 'diag' }>['level']) =>
  (...args: unknown[]) => {
    const [first, ...rest] = args.map((a) => (typeof a === 'string' ? a : errorText(a)));
    const namespace = rest.length > 0 ? (first as string) : '';
    const message = rest.length > 0 ? rest.join(' ') : (first ?? '');
    post({ t: 'diag', level, namespace, message });
  };
const logger: DiagLogger = {
  error: forward('error'),
  warn: forward('warn'),
  info: forward('info'),
  debug: forward('debug'),
  verbose: forward('verbose'),
};
diag.setLogger(logger, { logLevel: DiagLogLevel.ALL, suppressOverrideMessage: true });

const recorder = new MetricsRecorder();
const sendMetrics = () => post({ t: 'metrics', batch: recorder.take() });

const exporterOption = (): KubernautAuditExporter | undefined => {
  const e = start.exporter;
  if (e.kind === 'default') return undefined;
  if (e.kind === 'foreign') {
    // Not deliverable: the processor says so (as it does on the application thread) by its name.
    return { constructor: { name: e.name } } as unknown as KubernautAuditExporter;
  }
  const o = { ...e.options };
  for (const k of ['ca', 'cert', 'key'] as const) {
    const v = o[k];
    if (v instanceof Uint8Array && !Buffer.isBuffer(v)) o[k] = Buffer.from(v);
  }
  return new KubernautAuditExporter({
    ...o,
    // Its metrics go to its own MeterProvider, else the application's global one (replayed).
    meterProvider: recorder.provider('exporter'),
  });
};

const processor = withProcessorInternals(
  {
    resolved: start.config,
    ...(start.leftoverCheckMillis === undefined
      ? {}
      : { leftoverCheckMillis: start.leftoverCheckMillis }),
  },
  () =>
    new AuditLogRecordProcessor({
      exporter: exporterOption(),
      meterProvider: recorder.provider('processor'),
    }),
);
const seqs = start.seqBlockSize > 0 ? seqsOf(processor) : undefined;
/** Reserves the next block of seqs and publishes it to the application thread. */
function publishSeqs(): void {
  if (seqs === undefined) return;
  const [first, last] = seqs.handOut(start.seqBlockSize);
  start.seqBlock[0] = first;
  start.seqBlock[1] = last;
  Atomics.add(start.progress, 1, 1); // after the block: the application thread reads it then
  Atomics.notify(start.progress, 1);
}
/** Publishes the next block when the application thread has asked for it (and not been served). */
function serveSeqs(): void {
  if (Atomics.exchange(start.progress, PROGRESS_SEQ_ASKED, 0) === 1) publishSeqs();
}
publishSeqs(); // the first block, before anything is emitted
post({ t: 'ready', spoolKind: processor.spoolKind });
const timer = setInterval(sendMetrics, 1000);

let closed = false;
/** Waited on by the commitDelayMillis test hook (never notified). */
const slow = new Int32Array(new SharedArrayBuffer(4));

function handle(m: ToThread): void {
  switch (m.t) {
    case 'records': {
      try {
        const items = unpack(m.items);
        commitPrepared(processor, items, m.counts, { drift: m.drift, overflow: m.overflow });
      } finally {
        if (start.commitDelayMillis > 0) Atomics.wait(slow, 0, 0, start.commitDelayMillis);
        Atomics.store(start.progress, 0, m.n);
        Atomics.notify(start.progress, 0);
        serveSeqs(); // now, not after the batches queued behind this one
      }
      return;
    }
    case 'flush':
      processor.forceFlush({ timeoutMillis: m.timeoutMillis }).then(
        () => {
          sendMetrics();
          post({ t: 'flushed', id: m.id });
        },
        (err: unknown) => {
          sendMetrics();
          const e = err instanceof Error ? err : new Error(String(err));
          post({ t: 'flushed', id: m.id, error: { name: e.name, message: e.message } });
        },
      );
      return;
    case 'seqs':
      serveSeqs();
      return;
    case 'shutdown':
      if (closed) return;
      closed = true;
      seqs?.giveBack(m.lastSeq);
      void processor.shutdown().finally(() => {
        clearInterval(timer);
        sendMetrics();
        post({ t: 'shut', id: m.id });
        port.close();
      });
      return;
  }
}

port.on('message', (m: ToThread) => {
  try {
    handle(m);
  } catch (err) {
    post({
      t: 'diag',
      level: 'error',
      namespace: 'AuditLogRecordProcessor',
      message: `internal error on the delivery thread: ${errorText(err)}`,
    });
  }
});
