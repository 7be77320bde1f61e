// SPDX-License-Identifier: Apache-2.0
/*
 * The exporter's AuditDeliverer (what the sender behind the spool uses): a partial result
 * survives an exception, dead letters go through the injected writer without modifying the
 * exporter, and nothing it owns keeps a process alive (real child processes).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  auditEvents,
  captureDiag,
  cleanupTempDirs,
  FaultServer,
  makeAuditLogRecord,
  nodeBinary,
  readJsonLines,
  tempDir,
} from '@kubernaut/test-kit';
import { ExportResultCode } from '@opentelemetry/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventsBatch } from '../../src/deliver/events-batch.ts';
import { createExporter } from '../../src/exporter/create.ts';
import { createAuditDeliverer } from '../../src/exporter/kubernaut-audit-exporter.ts';
import { frameBatch } from '../../src/send/frame-batch.ts';
import { createDeliveryHealth } from '../../src/send/health.ts';
import type { Frame } from '../../src/send/spool-port.ts';
import type { OutgoingBatch } from '../../src/send/types.ts';
import { DeadLetterFile, deadLetterSink } from '../../src/spool/dead-letter.ts';

const CHILD = fileURLToPath(new URL('./fixtures/deliver-child.ts', import.meta.url));

let ds: FaultServer;
let tmpDir: string;

beforeEach(async () => {
  ds = await FaultServer.start();
  tmpDir = tempDir();
});

afterEach(async () => {
  await ds.close();
  cleanupTempDirs();
  expect(ds.specViolations).toEqual([]);
});

/** A frame of these events with these emit times. */
function frameOf(json: string[], emittedAt: number[]): Frame {
  const body = Buffer.from(`[${json.join(',')}]`);
  const offset = new Uint32Array(json.length);
  const length = new Uint32Array(json.length);
  let pos = 1;
  json.forEach((j, k) => {
    offset[k] = pos;
    length[k] = Buffer.byteLength(j);
    pos += length[k]! + 1;
  });
  return {
    lane: 0,
    firstSeq: 1,
    count: json.length,
    appendedAt: Date.now(),
    emittedAt: Float64Array.from(emittedAt),
    provSeq: new Float64Array(json.length),
    offset,
    length,
    body,
    frameBytes: body.length,
  };
}

const options = () => ({ signal: new AbortController().signal, health: createDeliveryHealth() });

describe('AuditDeliverer of the exporter', () => {
  it('a partial result survives an exception: accepted events stay accepted, the rest pending', async () => {
    const diag = captureDiag();
    try {
      const e = createExporter(
        { url: ds.url, maxBatchSize: 2 },
        { env: {}, deadLetterPath: join(tmpDir, 'dl.jsonl') },
      );
      const json = auditEvents(4).map((ev) => JSON.stringify(ev));
      const inner = eventsBatch({ json });
      // The second request's body cannot be built.
      const batch: OutgoingBatch = {
        ...inner,
        body(indexes) {
          if (indexes?.includes(2)) throw new Error('broken frame');
          return inner.body(indexes);
        },
      };
      const outcomes = await createAuditDeliverer(e).deliver(batch, options());
      expect(outcomes).toEqual(['accepted', 'accepted', 'pending', 'pending']);
      expect(ds.received()).toHaveLength(2);
      expect(diag.messages.some((m) => /unexpected delivery error/.test(m))).toBe(true);
      await e.shutdown();
    } finally {
      diag.restore();
    }
  });

  it('dead letters go through the injected writer; the exporter itself is not modified', async () => {
    const own = join(tmpDir, 'exporter-dl.jsonl');
    const injected = new DeadLetterFile({ path: join(tmpDir, 'processor-dl.jsonl') });
    const e = createExporter({ url: ds.url }, { env: {}, deadLetterPath: own });
    const events = auditEvents(3);
    ds.poison((ev) => ev.correlation_id === events[1]!.correlation_id, 'index');
    const d = createAuditDeliverer(e, { deadLetters: deadLetterSink(() => injected) });
    expect(d.destination).toBe(ds.url);
    const outcomes = await d.deliver(
      eventsBatch({ json: events.map((ev) => JSON.stringify(ev)) }),
      options(),
    );
    expect(outcomes).toEqual(['accepted', 'dead_lettered', 'accepted']);
    injected.close();
    expect(readJsonLines(join(tmpDir, 'processor-dl.jsonl'))).toMatchObject([
      { reason: 'rejected', event: events[1] },
    ]);
    expect(existsSync(own)).toBe(false);
    // The exporter's own exports still dead-letter into its own file.
    const bad = makeAuditLogRecord({ attributes: { 'audit.event.outcome': 'maybe' } });
    const r = await new Promise<{ code: ExportResultCode }>((resolve) => e.export([bad], resolve));
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    expect(readJsonLines(own)).toMatchObject([{ reason: 'invalid' }]);
    expect(readJsonLines(join(tmpDir, 'processor-dl.jsonl'))).toHaveLength(1);
    await e.shutdown();
  });

  it('expired events: one that waited is dead-lettered unsent; one emitted moments ago at the edge is dead-lettered as expired when DataStorage names it', async () => {
    const e = createExporter(
      { url: ds.url },
      { env: {}, deadLetterPath: join(tmpDir, 'dl.jsonl') },
    );
    const old = new Date(Date.now() - 7 * 24 * 3600 * 1000 - 5000).toISOString();
    const [waited, edge, fresh] = auditEvents(3);
    const events = [
      { ...waited!, event_timestamp: old },
      { ...edge!, event_timestamp: old },
      fresh!,
    ];
    const now = Date.now();
    const batch = frameBatch([
      {
        frame: frameOf(
          events.map((ev) => JSON.stringify(ev)),
          // Emitted long ago (it waited in the spool), moments ago, moments ago.
          [now - 3600_000, now - 10, now - 10],
        ),
        events: [0, 1, 2],
      },
    ]);
    const outcomes = await createAuditDeliverer(e).deliver(batch, options());
    expect(outcomes).toEqual(['dead_lettered', 'dead_lettered', 'accepted']);
    // The one that waited never went out; the edge one went out once and was named.
    expect(ds.requests.map((q) => q.events)).toEqual([2, 1]);
    expect(readJsonLines(join(tmpDir, 'dl.jsonl')).map((d) => d.reason)).toEqual([
      'expired',
      'expired',
    ]);
    // The edge event is the one invalid event DataStorage saw (on purpose).
    expect(ds.specViolations.map((v) => v.violations.map((x) => x.reason))).toEqual([['expired']]);
    ds.specViolations.length = 0;
    await e.shutdown();
  });

  for (const down of ['refuses connections', 'never answers'] as const) {
    it(`does not keep a process alive while DataStorage ${down}`, async () => {
      if (down === 'refuses connections') await ds.stop();
      else ds.inject({ type: 'slow', delayMillis: 60_000, commit: false }, 100);
      const started = Date.now();
      const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
        env: { ...process.env, DS_URL: ds.url, DIR: tmpDir },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout?.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(out).toContain('STARTED');
      expect(code).toBe(0);
      // Well before the 60 s request timeout or any answer.
      expect(Date.now() - started).toBeLessThan(20_000);
      if (down === 'never answers') expect(ds.requests.length).toBeGreaterThan(0);
    });
  }
});

describe('backoff after DataStorage was unreachable', () => {
  const slowRetry = { initialDelayMillis: 3_600_000, maxDelayMillis: 3_600_000, jitter: 0 };

  it("a lane backing off wakes at another lane's acceptance (DataStorage is back), not at its next retry", async () => {
    const health = createDeliveryHealth();
    const sleeps: { ms: number; woken: boolean }[] = [];
    const e = createExporter(
      { url: ds.url, retry: slowRetry },
      {
        env: {},
        deadLetterPath: join(tmpDir, 'dl.jsonl'),
        // Sleeps until its signal aborts (an hour by the retry settings): only a wake-up ends it.
        sleep: (ms, signal) =>
          new Promise<void>((resolve) => {
            const s = { ms, woken: false };
            sleeps.push(s);
            signal?.addEventListener('abort', () => {
              s.woken = true;
              resolve();
            });
            // Another lane gets DataStorage's acceptance while this one waits.
            setImmediate(() => health.accepted(Date.now()));
          }),
      },
    );
    ds.inject({ type: 'unavailable' }, 1);
    const json = auditEvents(2).map((ev) => JSON.stringify(ev));
    const outcomes = await createAuditDeliverer(e).deliver(eventsBatch({ json }), {
      signal: new AbortController().signal,
      health,
    });
    expect(outcomes).toEqual(['accepted', 'accepted']);
    expect(sleeps).toEqual([{ ms: 3_600_000, woken: true }]);
    await e.shutdown();
  });

  it("a server's Retry-After is honoured in full: another lane's acceptance does not cut it", async () => {
    const health = createDeliveryHealth();
    const ac = new AbortController();
    const sleeps: { ms: number; woken: boolean }[] = [];
    const e = createExporter(
      { url: ds.url, retry: { initialDelayMillis: 10, maxDelayMillis: 10, jitter: 0 } },
      {
        env: {},
        deadLetterPath: join(tmpDir, 'dl.jsonl'),
        sleep: (ms, signal) =>
          new Promise<void>((resolve) => {
            const s = { ms, woken: false };
            sleeps.push(s);
            health.accepted(Date.now());
            // Not woken by the acceptance: the test's abort ends the wait.
            setImmediate(() => {
              s.woken = signal?.aborted === true;
              ac.abort();
              resolve();
            });
          }),
      },
    );
    ds.inject({ type: 'rate-limited', retryAfter: '120' }, 1);
    const json = auditEvents(1).map((ev) => JSON.stringify(ev));
    const outcomes = await createAuditDeliverer(e).deliver(eventsBatch({ json }), {
      signal: ac.signal,
      health,
    });
    expect(outcomes).toEqual(['pending']);
    expect(sleeps).toEqual([{ ms: 120_000, woken: false }]);
    await e.shutdown();
  });
});
