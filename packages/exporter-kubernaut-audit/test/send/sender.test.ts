// SPDX-License-Identifier: Apache-2.0
/*
 * The sender (spool → DataStorage) against the fault-injecting loopback DataStorage, with the
 * exporter's real AuditDeliverer and a test spool of format-2 frames (issue 11 behaviours 4,
 * 10 and 11 as the sender sees them): lane order, one request in flight per lane, SENT marks
 * before requests and ordered acks, poison isolation between lanes, memory bounded by the
 * lane budgets during an outage, destination mismatch, duplicates after a restart.
 */
import { join } from 'node:path';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import type { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import {
  auditEvent,
  captureDiag,
  cleanupTempDirs,
  FaultServer,
  manualClock,
  readJsonLines,
  type TestMetrics,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createExporter, type KubernautAuditExporterInternals } from '../../src/exporter/create.ts';
import { createAuditDeliverer } from '../../src/exporter/kubernaut-audit-exporter.ts';
import {
  AuditSender,
  type AuditSenderOptions,
  DISK_READ_AHEAD_BYTES,
  STALLED_MILLIS,
} from '../../src/send/sender.ts';
import type { AuditDeliverer, OutgoingBatch } from '../../src/send/types.ts';
import { encodeEvents, fnv1a32, TestSpool } from './support/test-spool.ts';

const LANES = 4;

let ds: FaultServer;
let tmpDir: string;
let metrics: TestMetrics;
let cleanups: Array<() => Promise<void>>;

beforeEach(async () => {
  ds = await FaultServer.start();
  tmpDir = tempDir();
  metrics = testMetrics();
  cleanups = [];
});

afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  await ds.close();
  cleanupTempDirs();
  expect(ds.specViolations).toEqual([]);
});

const deadLetterPath = () => join(tmpDir, 'dead-letter.jsonl');

/** A correlation id whose lane is `lane` (k-th of that lane). */
function correlationOf(lane: number, k: number): string {
  for (let n = 0; ; n++) {
    const id = `lane${lane}-c${k}-${n}`;
    if (fnv1a32(id) % LANES === lane) return id;
  }
}

/** Events numbered in resource_id: `count` per lane, interleaved across lanes, `corrs` correlations per lane. */
function laneEvents(count: number, corrs = 3, lanes = [0, 1, 2, 3]): AuditEventRequest[] {
  const out: AuditEventRequest[] = [];
  for (let k = 0; k < count; k++) {
    for (const lane of lanes) {
      out.push(
        auditEvent({
          correlation_id: correlationOf(lane, k % corrs),
          resource_id: `n-${lane}-${k}`,
        }),
      );
    }
  }
  return out;
}

interface Rig {
  exporter: KubernautAuditExporter;
  spool: TestSpool;
  sender: AuditSender;
  /** Appends events and hands the frames to the sender. */
  append(events: AuditEventRequest[]): void;
  /** Resolves once every appended event is acked. */
  settled(): Promise<void>;
}

function rig(
  options: {
    spool?: TestSpool;
    internals?: KubernautAuditExporterInternals;
    sender?: Partial<AuditSenderOptions>;
    wrap?: (d: AuditDeliverer) => AuditDeliverer;
    retry?: { initialDelayMillis: number; maxDelayMillis: number };
  } = {},
): Rig {
  const exporter = createExporter(
    {
      url: ds.url,
      meterProvider: metrics.meterProvider,
      retry: options.retry ?? { initialDelayMillis: 5, maxDelayMillis: 20 },
    },
    { deadLetterPath: deadLetterPath(), env: {}, ...options.internals },
  );
  const spool = options.spool ?? new TestSpool({ lanes: LANES, destination: ds.url });
  const base = createAuditDeliverer(exporter);
  const deliverer = options.wrap
    ? Object.assign(options.wrap(base), { destination: base.destination })
    : base;
  let waiters: Array<() => void> = [];
  const check = () => {
    if (spool.oldestUnackedSeq() > spool.lastSeq()) {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    }
  };
  const sender = new AuditSender({
    spool,
    deliverer,
    meterProvider: metrics.meterProvider,
    onSettled: check,
    ...options.sender,
  });
  cleanups.push(async () => {
    await sender.stop();
    await exporter.shutdown();
  });
  return {
    exporter,
    spool,
    sender,
    append(events) {
      sender.enqueue(spool.append(encodeEvents(events, LANES)).frames);
    },
    settled() {
      return new Promise<void>((resolve) => {
        waiters.push(resolve);
        check();
      });
    },
  };
}

/** Received resource_ids grouped by correlation, in arrival order. */
function arrivalOrder(): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const s of ds.received()) {
    const list = m.get(s.event.correlation_id) ?? [];
    list.push(s.event.resource_id ?? '');
    m.set(s.event.correlation_id, list);
  }
  return m;
}

function expectedOrder(events: AuditEventRequest[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const e of events) {
    const list = m.get(e.correlation_id) ?? [];
    list.push(e.resource_id ?? '');
    m.set(e.correlation_id, list);
  }
  return m;
}

/** Every event arrived once, each correlation's in spool order; the sender holds nothing now. */
function expectDeliveredOnceInOrder(events: AuditEventRequest[], sender?: AuditSender): void {
  expect(ds.received()).toHaveLength(events.length);
  expect(arrivalOrder()).toEqual(expectedOrder(events));
  expect(ds.duplicates()).toBe(0);
  if (sender !== undefined) expect(sender.heldBytes()).toBe(0);
}

describe('AuditSender', () => {
  it('delivers every event once, in spool order per correlation; SENT before each request, acks in lane order; one request in flight per lane', async () => {
    const inFlight = new Map<number, number>();
    let maxPerLane = 0;
    let r!: Rig;
    r = rig({
      wrap: (d) => ({
        async deliver(batch: OutgoingBatch, opts) {
          // Marked SENT before the request, not acked yet.
          expect(batch.seqs.every((s) => r.spool.isSent(s) && !r.spool.isAcked(s))).toBe(true);
          const lane = fnv1a32(JSON.parse(batch.eventJson(0)).correlation_id) % LANES;
          inFlight.set(lane, (inFlight.get(lane) ?? 0) + 1);
          maxPerLane = Math.max(maxPerLane, inFlight.get(lane) ?? 0);
          try {
            return await d.deliver(batch, opts);
          } finally {
            inFlight.set(lane, (inFlight.get(lane) ?? 0) - 1);
          }
        },
      }),
    });
    ds.inject({ type: 'slow', delayMillis: 30 }, 4);
    r.sender.start();
    const events = laneEvents(300);
    // Several appends (several frames per lane) while requests are in flight.
    for (let i = 0; i < events.length; i += 100) r.append(events.slice(i, i + 100));
    await r.settled();
    expect(ds.received()).toHaveLength(events.length);
    expect(ds.duplicates()).toBe(0);
    expect(arrivalOrder()).toEqual(expectedOrder(events));
    expect(maxPerLane).toBe(1);
    // Acks of a lane come in seq order.
    const ackedFirst: number[][] = Array.from({ length: LANES }, () => []);
    for (const m of r.spool.marks) {
      if (m.kind !== 'ack') continue;
      const first = m.ranges[0]!.from;
      ackedFirst[r.spool.laneOf(first)]!.push(first);
    }
    for (const seqs of ackedFirst) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    // Merged frames: fewer requests than frames.
    expect(ds.requests.length).toBeLessThan(events.length / 50);
  });

  it('onAccepted: once per accepted request, with the emit time of its oldest accepted event and how many were accepted (not once per event)', async () => {
    const calls: Array<[number, number]> = [];
    const r = rig({ sender: { onAccepted: (oldest, n) => calls.push([oldest, n]) } });
    const t0 = Date.now();
    const lane0 = (k: number) =>
      auditEvent({ correlation_id: correlationOf(0, 0), resource_id: `n-0-${k}` });
    const older = Array.from({ length: 10 }, (_, k) => lane0(k));
    const newer = Array.from({ length: 10 }, (_, k) => lane0(10 + k));
    // Appended before start(): both frames go in one request.
    r.sender.enqueue(r.spool.append(encodeEvents(older, LANES, t0 - 5000)).frames);
    r.sender.enqueue(r.spool.append(encodeEvents(newer, LANES, t0 - 1000)).frames);
    r.sender.start();
    await r.settled();
    expect(ds.requests).toHaveLength(1);
    expect(calls).toEqual([[t0 - 5000, 20]]);
    // DataStorage rejects one event of the next request: it is dead-lettered, not counted.
    ds.inject({ type: 'reject-index', index: 2 });
    r.sender.enqueue(
      r.spool.append(
        encodeEvents(
          Array.from({ length: 4 }, (_, k) => lane0(20 + k)),
          LANES,
          t0 - 2000,
        ),
      ).frames,
    );
    await r.settled();
    const later = calls.slice(1);
    expect(later.length).toBeGreaterThanOrEqual(1);
    expect(later.every(([oldest]) => oldest === t0 - 2000)).toBe(true);
    expect(later.reduce((n, [, k]) => n + k, 0)).toBe(3);
  });

  it('poison isolation: an event DataStorage answers 500 forever stops only until it is quarantined; other lanes deliver meanwhile; then its lane resumes in order', async () => {
    const clock = manualClock(Date.now());
    const poisoned = auditEvent({ correlation_id: correlationOf(0, 0), resource_id: 'poison' });
    ds.poison((e) => e.resource_id === 'poison', { status: 500, detail: 'pq: broken record' });
    let r!: Rig;
    let extra = 0;
    const receivedWhileStuck: number[] = [];
    r = rig({
      retry: { initialDelayMillis: 1000, maxDelayMillis: 30_000 },
      internals: {
        now: clock.now,
        // Each backoff moves the clock; other lanes keep producing meanwhile.
        sleep: async (ms) => {
          clock.advance(ms);
          if (r.spool.oldestUnackedSeq() <= r.spool.lastSeq()) {
            receivedWhileStuck.push(ds.received().length);
            const more = laneEvents(2, 2, [1, 2, 3]).map((e) => ({
              ...e,
              resource_id: `more-${extra++}`,
            }));
            r.append(more);
          }
          await new Promise((resolve) => setImmediate(resolve));
        },
      },
    });
    r.sender.start();
    const before = laneEvents(20, 2, [0]);
    const after = laneEvents(20, 2, [0]).map((e, k) => ({ ...e, resource_id: `after-${k}` }));
    const others = laneEvents(50, 3, [1, 2, 3]);
    r.append([...before, poisoned, ...after, ...others]);
    await r.settled();
    // Other lanes were never held up: they kept delivering while lane 0 was stuck.
    expect(receivedWhileStuck.length).toBeGreaterThan(5);
    expect(receivedWhileStuck.at(-1)).toBeGreaterThan(receivedWhileStuck[0]!);
    const dl = readJsonLines(deadLetterPath());
    expect(dl).toMatchObject([{ reason: 'poison', status: 500, event: poisoned }]);
    expect(await metrics.sum('kubernaut.audit.poison')).toBe(1);
    // Everything else of lane 0 delivered, in order, the poisoned one left out.
    const lane0 = [...before, ...after];
    const got = arrivalOrder();
    for (const [corr, list] of expectedOrder(lane0)) expect(got.get(corr)).toEqual(list);
    expect(ds.received().filter((s) => s.event.resource_id === 'poison')).toHaveLength(0);
    expect(ds.received()).toHaveLength(lane0.length + others.length + extra);
    expect(ds.duplicates()).toBe(0);
  });

  it('an outage: memory stays within the lane budgets, frames wait on the spool and are read back in order once DataStorage returns', async () => {
    const budget = 32 * 1024;
    let maxHeld = 0;
    let sleeps = 0;
    let r!: Rig;
    r = rig({
      sender: { laneBudgetBytes: budget },
      internals: {
        sleep: async () => {
          sleeps++;
          maxHeld = Math.max(maxHeld, r.sender.heldBytes());
          for (let lane = 0; lane < LANES; lane++) {
            expect(r.sender.heldBytes(lane)).toBeLessThanOrEqual(budget + maxFrame);
          }
          if (sleeps === 40) await ds.listen();
          await new Promise((resolve) => setImmediate(resolve));
        },
      },
    });
    let maxFrame = 0;
    await ds.stop();
    r.sender.start();
    const events = laneEvents(400, 5);
    // Many small appends (frames of 40 events), all while DataStorage is down.
    for (let i = 0; i < events.length; i += 40) {
      const frames = r.spool.append(encodeEvents(events.slice(i, i + 40), LANES)).frames;
      for (const f of frames) maxFrame = Math.max(maxFrame, f.frameBytes);
      r.sender.enqueue(frames);
    }
    const spooled = r.spool.stats().bytes;
    expect(spooled).toBeGreaterThan(4 * LANES * budget);
    expect(r.sender.heldBytes()).toBeLessThanOrEqual(LANES * (budget + maxFrame));
    await r.settled();
    expect(maxHeld).toBeLessThanOrEqual(LANES * (budget + maxFrame));
    expect(maxHeld).toBeLessThan(spooled / 3);
    // Frames were read back from the spool (disk mode), in order.
    expect(r.spool.reads.filter((x) => x.frames > 0).length).toBeGreaterThan(LANES);
    expectDeliveredOnceInOrder(events, r.sender);
  });

  /** A gate that `open()` opens. */
  function gated(): { gate: Promise<void>; open: () => void } {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { gate, open };
  }

  /**
   * Lanes of ≈ 8 frames' budget (they go to disk mode before they stall, keeping what they
   * held), requests of one frame (10 events per lane), the sender on `clock`.
   */
  const smallLanes = (clock: { now: () => number }): Partial<AuditSenderOptions> => ({
    laneBudgetBytes: 48 * 1024,
    maxBatchEvents: 10,
    coalesceMillis: 0,
    now: clock.now,
  });

  /** Appends events [from, to) and enqueues their frames; `maxFrame()` is the largest so far. */
  function appender(r: Rig, events: AuditEventRequest[]) {
    let max = 0;
    return {
      append(from: number, to: number): void {
        const frames = r.spool.append(encodeEvents(events.slice(from, to), LANES)).frames;
        for (const f of frames) max = Math.max(max, f.frameBytes);
        r.sender.enqueue(frames);
      },
      maxFrame: () => max,
    };
  }

  it('a lane whose request failed and waits for its retry lets go at once of the frames it has not begun to send: from the first failed attempt of an outage a lane holds one request, not its budget', async () => {
    const clock = manualClock(1_000);
    const { gate, open } = gated();
    let retrying = 0;
    const r = rig({
      sender: smallLanes(clock),
      internals: {
        // Retries wait for the gate (or for the sender to stop).
        sleep: async (_ms, signal) => {
          retrying++;
          await Promise.race([
            gate,
            new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve())),
          ]);
        },
      },
    });
    await ds.stop();
    r.sender.start();
    const events = laneEvents(200, 5);
    const { append, maxFrame } = appender(r, events);
    // Each lane's first request is its first frame.
    append(0, 40);
    await vi.waitFor(() => expect(retrying).toBeGreaterThanOrEqual(LANES));
    // The clock has not moved: no lane has been in flight for STALLED_MILLIS, but every one
    // has had an attempt fail (ECONNREFUSED).
    for (let i = 40; i < events.length; i += 40) append(i, i + 40);
    for (let lane = 0; lane < LANES; lane++) {
      // The frame of the request in flight, nothing more.
      expect(r.sender.heldBytes(lane)).toBeLessThanOrEqual(maxFrame());
    }
    expect(r.sender.appendBuffer(1000)).toBeDefined(); // every lane reads from the spool
    await ds.listen();
    open();
    await r.settled();
    expectDeliveredOnceInOrder(events, r.sender);
  });

  it('a stalled lane (its request in flight for STALLED_MILLIS without an answer) lets go of the frames it has not begun to send', async () => {
    const clock = manualClock(1_000);
    const { gate, open } = gated();
    let started = 0;
    const r = rig({
      sender: smallLanes(clock),
      // DataStorage slow to answer: each lane's first request is held before it is sent (no
      // attempt fails, nothing is retried).
      wrap: (d) => ({
        deliver: async (batch, options) => {
          started++;
          await gate;
          return d.deliver(batch, options);
        },
      }),
    });
    r.sender.start();
    const events = laneEvents(200, 5);
    const { append, maxFrame } = appender(r, events);
    append(0, 40);
    await vi.waitFor(() => expect(started).toBeGreaterThanOrEqual(LANES));
    for (let i = 40; i < 400; i += 40) append(i, i + 40);
    // Not stalled yet (the clock has not moved): the lanes keep what arrives, up to the budget.
    for (let lane = 0; lane < LANES; lane++) {
      expect(r.sender.heldBytes(lane)).toBeGreaterThan(5 * maxFrame());
      expect(r.sender.heldBytes(lane)).toBeLessThanOrEqual(48 * 1024 + maxFrame());
    }
    expect(r.sender.appendBuffer(1000)).toBeDefined(); // every lane is in disk mode
    clock.advance(STALLED_MILLIS);
    for (let i = 400; i < events.length; i += 40) append(i, i + 40);
    for (let lane = 0; lane < LANES; lane++) {
      expect(r.sender.heldBytes(lane)).toBeLessThanOrEqual(maxFrame());
    }
    open();
    await r.settled();
    expectDeliveredOnceInOrder(events, r.sender);
  });

  it('a lane reading a backlog from the spool reads at most DISK_READ_AHEAD_BYTES ahead, whatever its budget', async () => {
    let maxHeld = 0;
    let r!: Rig;
    r = rig({
      sender: { laneBudgetBytes: 8 * 1024 * 1024 },
      wrap: (d) => ({
        deliver: (batch, options) => {
          for (let lane = 0; lane < LANES; lane++) {
            maxHeld = Math.max(maxHeld, r.sender.heldBytes(lane));
          }
          return d.deliver(batch, options);
        },
      }),
    });
    // Events of ≈ 1 KB: more than two read-aheads per lane.
    const events = laneEvents(1500, 5).map((e) => ({
      ...e,
      event_data: { ...e.event_data, pad: 'x'.repeat(1000) },
    }));
    let maxFrame = 0;
    // A backlog: appended before start, so every lane reads it back from the spool.
    for (let i = 0; i < events.length; i += 200) {
      const frames = r.spool.append(encodeEvents(events.slice(i, i + 200), LANES)).frames;
      for (const f of frames) maxFrame = Math.max(maxFrame, f.frameBytes);
    }
    expect(r.spool.stats().bytes / LANES).toBeGreaterThan(2 * DISK_READ_AHEAD_BYTES);
    r.sender.start();
    await r.settled();
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(DISK_READ_AHEAD_BYTES + maxFrame);
    expectDeliveredOnceInOrder(events);
  });

  it("frames read back share the lane's read arena: a frame's bytes are reused only after the request that carried it settled", async () => {
    // Small requests (7 events) over frames of 10 events per lane: a lane holds frames across
    // several requests, so a region reused too early would corrupt a later request's events.
    const r = rig({ sender: { laneBudgetBytes: 24 * 1024, maxBatchEvents: 7 } });
    await ds.stop();
    r.sender.start();
    const events = laneEvents(300, 5);
    for (let i = 0; i < events.length; i += 40) {
      r.sender.enqueue(r.spool.append(encodeEvents(events.slice(i, i + 40), LANES)).frames);
    }
    await ds.listen();
    await r.settled();
    expect(r.spool.reads.filter((x) => x.frames > 0).length).toBeGreaterThan(LANES);
    expectDeliveredOnceInOrder(events, r.sender);
  });

  it('appends reuse one buffer only while every lane reads from the spool (no lane keeps appended frames)', async () => {
    const r = rig({ sender: { laneBudgetBytes: 16 * 1024 } });
    await ds.stop();
    expect(r.sender.appendBuffer(1000)?.length).toBe(1000); // not started: every lane on disk
    r.sender.start(); // an empty spool: the lanes take appended frames in memory from now on
    expect(r.sender.appendBuffer(1000)).toBeUndefined();
    const events = laneEvents(200, 5);
    for (let i = 0; i < events.length; i += 40) r.append(events.slice(i, i + 40));
    // Over their budgets during the outage: every lane reads from the spool again.
    const a = r.sender.appendBuffer(1000);
    const b = r.sender.appendBuffer(2000);
    expect(a?.buffer).toBe(b?.buffer);
    expect(r.sender.appendBuffer(64 * 1024 * 1024)).toBeUndefined(); // too large: its own
    await ds.listen();
    await r.settled();
    expect(ds.received()).toHaveLength(events.length);
    expect(r.sender.appendBuffer(1000)).toBeUndefined(); // caught up: lanes keep frames again
  });

  it('a spool of another DataStorage: nothing is sent, the mismatch is reported and the records wait', async () => {
    const other = await FaultServer.start();
    const diag = captureDiag();
    try {
      const spool = new TestSpool({
        lanes: LANES,
        destination: `${other.url.replace('//', '//user:secret@')}/`,
      });
      const r = rig({ spool });
      r.sender.start();
      r.append(laneEvents(5));
      expect(r.sender.destinationMismatch).toBe(true);
      expect(await metrics.sum('kubernaut.audit.spool.destination_mismatch')).toBe(1);
      // Give the lanes every chance to run: nothing reaches either DataStorage.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(ds.requests).toHaveLength(0);
      expect(other.requests).toHaveLength(0);
      expect(spool.stats().records).toBe(20);
      // The same destination spelled differently is no mismatch.
      const same = rig({
        spool: new TestSpool({ lanes: LANES, destination: ds.url.replace('http', 'HTTP') }),
      });
      expect(same.sender.destinationMismatch).toBe(false);
      expect(diag.messages.join('\n')).not.toContain('secret');
      expect(
        diag.messages.some((m) =>
          m.includes(
            `the spool belongs to DataStorage ${other.url} but the exporter sends to ${ds.url}`,
          ),
        ),
      ).toBe(true);
    } finally {
      diag.restore();
      await other.close();
    }
  });

  it("a predecessor's backlog is delivered at start; events it had marked SENT count in duplicates_possible when resent", async () => {
    const dir = join(tmpDir, 'spool');
    const first = new TestSpool({ lanes: LANES, destination: ds.url, directory: dir });
    const events = laneEvents(10);
    first.append(encodeEvents(events, LANES));
    // The predecessor had sent lane 1's first frame (seqs of lane 1) and lane 2's, unanswered.
    const sentSeqs: number[] = [];
    for (let lane = 1; lane <= 2; lane++) {
      const f = first.readLane(lane, 0, 1)[0]!;
      first.markSent([{ from: f.firstSeq, to: f.firstSeq + f.count - 1 }]);
      sentSeqs.push(f.count);
    }
    const r = rig({ spool: new TestSpool({ lanes: LANES, destination: ds.url, directory: dir }) });
    r.sender.start();
    await r.settled();
    expect(ds.received()).toHaveLength(events.length);
    expect(arrivalOrder()).toEqual(expectedOrder(events));
    expect(await metrics.sum('kubernaut.audit.duplicates_possible')).toBe(
      sentSeqs.reduce((a, b) => a + b, 0),
    );
  });
});

describe('AuditSender coalescing under load', () => {
  it('frames reaching a lane that sent less than coalesceMillis ago wait and go as one fuller request', async () => {
    const r = rig({ sender: { coalesceMillis: 1000 } });
    r.sender.start();
    const events = laneEvents(125); // 125 per lane
    r.append(events.slice(0, 100)); // 25 per lane: the lanes were quiet, they send at once
    await r.settled();
    expect(ds.requests.map((q) => q.events)).toEqual([25, 25, 25, 25]);
    // Four more drains of 25 per lane while the lanes' last requests are recent (under load):
    // one request of 100 per lane when the window ends, not four of 25.
    for (let i = 100; i < 500; i += 100) r.append(events.slice(i, i + 100));
    await r.settled();
    expect(ds.requests.map((q) => q.events)).toEqual([25, 25, 25, 25, 100, 100, 100, 100]);
    expect(ds.received()).toHaveLength(500);
    expect(arrivalOrder()).toEqual(expectedOrder(events));
  });

  it('a lane quiet for longer than the window sends at once; sendNow() ends a wait (forceFlush, shutdown)', async () => {
    let now = 0;
    const r = rig({ sender: { coalesceMillis: 3_600_000, now: () => now } });
    r.sender.start();
    const events = laneEvents(30);
    r.append(events.slice(0, 40));
    await r.settled();
    now = 3_700_000; // an hour and more later: no wait
    r.append(events.slice(40, 80));
    await r.settled();
    expect(ds.requests).toHaveLength(8);
    r.append(events.slice(80)); // within the hour: the lanes wait…
    const done = r.settled();
    r.sender.sendNow(); // …until asked to send now
    await done;
    expect(ds.received()).toHaveLength(120);
    expect(ds.requests).toHaveLength(12);
  });

  it('a full request never waits', async () => {
    const r = rig({ sender: { coalesceMillis: 3_600_000, now: () => 0, maxBatchEvents: 50 } });
    r.sender.start();
    const events = laneEvents(150, 3, [0]);
    r.append(events.slice(0, 50));
    await r.settled();
    r.append(events.slice(50, 100)); // a full request (50 events): sent at once
    await r.settled();
    expect(ds.requests.map((q) => q.events)).toEqual([50, 50]);
  });
});
