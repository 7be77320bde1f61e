// SPDX-License-Identifier: Apache-2.0
/*
 * What counts as DataStorage's answer, against the fault-injecting loopback DataStorage
 * (issue 11, behaviours 3, 4, 5, 6): only DataStorage's own 201/202 bodies are acceptance; a
 * 400 storm is not poison; an event that DataStorage answers 500 forever is quarantined only
 * while DataStorage accepts other events; Retry-After never makes a tight loop. Time is a
 * manual clock moved by the recording sleeper: "≥ 1 minute" rules run without waiting.
 */
import { join } from 'node:path';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import type {
  KubernautAuditExporter,
  KubernautAuditExporterOptions,
} from '@kubernaut/exporter-kubernaut-audit';
import { deliverEvents } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  auditEvent,
  auditEvents,
  captureDiag,
  cleanupTempDirs,
  type DiagCapture,
  FaultServer,
  type ManualClock,
  makeAuditLogRecord,
  manualClock,
  readJsonLines,
  recordingSleeper,
  type TestMetrics,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { ExportResultCode } from '@opentelemetry/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExporter, type KubernautAuditExporterInternals } from '../../src/exporter/create.ts';

let ds: FaultServer;
let tmpDir: string;
let metrics: TestMetrics;
let exporters: KubernautAuditExporter[];
let diagCapture: DiagCapture;

beforeEach(async () => {
  ds = await FaultServer.start();
  tmpDir = tempDir();
  metrics = testMetrics();
  exporters = [];
  diagCapture = captureDiag();
});

afterEach(async () => {
  diagCapture.restore();
  for (const e of exporters) await e.shutdown();
  await ds.close();
  cleanupTempDirs();
  expect(ds.specViolations).toEqual([]);
});

const deadLetterPath = () => join(tmpDir, 'dead-letter.jsonl');

function exporter(
  options: KubernautAuditExporterOptions = {},
  internals: KubernautAuditExporterInternals = {},
): KubernautAuditExporter {
  const e = createExporter(
    {
      url: ds.url,
      meterProvider: metrics.meterProvider,
      retry: { initialDelayMillis: 100, maxDelayMillis: 1000, multiplier: 2, jitter: 0 },
      ...options,
    },
    { deadLetterPath: deadLetterPath(), env: {}, ...internals },
  );
  exporters.push(e);
  return e;
}

/** A sleeper that moves `clock` by each delay and aborts `ac` after `maxSleeps` sleeps. */
function clockSleeper(
  clock: ManualClock,
  ac: AbortController,
  maxSleeps: number,
  onSleep?: (ms: number, call: number) => void | Promise<void>,
) {
  return recordingSleeper(async (ms, call) => {
    clock.advance(ms);
    if (call >= maxSleeps) ac.abort();
    await onSleep?.(ms, call);
  });
}

const ids = (events: AuditEventRequest[]) => events.map((e) => e.correlation_id);
const receivedIds = () => ds.received().map((s) => s.event.correlation_id);

describe('only DataStorage answers count as accepted (behaviour 3)', () => {
  it('a 200 HTML page, a 204, a 200 {"status":"ok"}, a 201 without matching event_ids and a 202 without status accepted are retried and reported, never taken as delivered', async () => {
    ds.inject({ type: 'status', status: 200, rawBody: '<html><body>Welcome</body></html>' })
      .inject({ type: 'status', status: 204, rawBody: '' })
      .inject({
        type: 'status',
        status: 200,
        body: { status: 'ok' },
        headers: { 'content-type': 'application/json' },
      })
      .inject({
        type: 'status',
        status: 201,
        body: { event_ids: ['only-one'] },
        headers: { 'content-type': 'application/json' },
      })
      .inject({
        type: 'status',
        status: 202,
        body: { status: 'queued' },
        headers: { 'content-type': 'application/json' },
      });
    const s = recordingSleeper();
    const events = auditEvents(3);
    const r = await deliverEvents(exporter({}, { sleep: s.sleep }), events);
    expect(r.outcomes).toEqual(['accepted', 'accepted', 'accepted']);
    // Five answers that were not DataStorage's, then DataStorage's 201: stored once each.
    expect(ds.requests.map((q) => q.status)).toEqual([200, 204, 200, 201, 202, 201]);
    expect(receivedIds()).toEqual(ids(events));
    expect(s.delays).toHaveLength(5);
    expect(await metrics.sum('kubernaut.audit.delivery.unexpected_response')).toBe(5);
    expect(
      await metrics.sum('kubernaut.audit.delivery.unexpected_response', {
        'http.response.status_code': 204,
      }),
    ).toBe(1);
    expect(diagCapture.messages.some((m) => /not DataStorage's answer.*misconfigur/i.test(m))).toBe(
      true,
    );
    expect(readJsonLines(deadLetterPath())).toEqual([]);
  });

  it('a 201 whose event_ids are not one distinct string per event is not taken as accepted', async () => {
    const json = { 'content-type': 'application/json' };
    ds.inject({ type: 'status', status: 201, body: { event_ids: [1, 2] }, headers: json })
      .inject({ type: 'status', status: 201, body: { event_ids: [null, null] }, headers: json })
      .inject({ type: 'status', status: 201, body: { event_ids: ['a', 'a'] }, headers: json })
      .inject({ type: 'status', status: 201, body: { event_ids: ['', 'b'] }, headers: json });
    const s = recordingSleeper();
    const events = auditEvents(2);
    const r = await deliverEvents(exporter({}, { sleep: s.sleep }), events);
    expect(r.outcomes).toEqual(['accepted', 'accepted']);
    expect(ds.requests.map((q) => q.status)).toEqual([201, 201, 201, 201, 201]);
    expect(receivedIds()).toEqual(ids(events));
    expect(await metrics.sum('kubernaut.audit.delivery.unexpected_response')).toBe(4);
  });

  it('a redirect is never followed: retried, counted as unexpected, and the diagnostic names where it points (without credentials)', async () => {
    ds.inject({
      type: 'status',
      status: 308,
      rawBody: '',
      headers: {
        location: 'https://user:secret@datastorage.example:8443/api/v1/audit/events/batch',
      },
    }).inject({ type: 'status', status: 302, rawBody: '', headers: { location: '/login?next=x' } });
    const s = recordingSleeper();
    const events = auditEvents(2);
    const r = await deliverEvents(exporter({}, { sleep: s.sleep }), events);
    expect(r.outcomes).toEqual(['accepted', 'accepted']);
    expect(ds.requests.map((q) => q.status)).toEqual([308, 302, 201]);
    expect(receivedIds()).toEqual(ids(events));
    expect(await metrics.sum('kubernaut.audit.delivery.unexpected_response')).toBe(2);
    const text = diagCapture.messages.join('\n');
    expect(text).toMatch(
      /HTTP 308 redirect to https:\/\/datastorage\.example:8443\/api\/v1\/audit\/events\/batch, not followed/,
    );
    expect(text).toMatch(/HTTP 302 redirect to \/login\?next=x, not followed/);
    expect(text).not.toContain('secret');
  });

  it('a standalone export() answered 200 by something in the path reports FAILED, not SUCCESS', async () => {
    ds.inject({ type: 'status', status: 200, rawBody: '<html>login</html>' }, 10_000);
    const e = exporter({
      timeoutMillis: 300,
      retry: { initialDelayMillis: 20, maxDelayMillis: 40 },
    });
    const r = await new Promise<{ code: ExportResultCode; error?: Error }>((resolve) =>
      e.export([makeAuditLogRecord({})], resolve),
    );
    expect(r.code).toBe(ExportResultCode.FAILED);
    expect(r.error?.message).toMatch(/not DataStorage's answer \(HTTP 200: <html>login/);
    expect(ds.received()).toHaveLength(0);
  });

  it("DataStorage's 202 AsyncAcceptanceResponse is accepted and never resent", async () => {
    ds.inject({ type: 'dlq' });
    const r = await deliverEvents(exporter(), auditEvents(2));
    expect(r.outcomes).toEqual(['accepted', 'accepted']);
    expect(ds.requests.map((q) => q.status)).toEqual([202]);
    expect(await metrics.sum('kubernaut.audit.delivery.unexpected_response')).toBe(0);
  });
});

describe('Retry-After (behaviour 6)', () => {
  it('0, a past date and garbage count as absent; never below the backoff floor; capped at 5 minutes', async () => {
    const now = Date.parse('2026-11-22T10:00:00Z');
    await ds.close();
    ds = await FaultServer.start({ now: () => now });
    ds.inject({ type: 'rate-limited', retryAfter: '0' })
      .inject({ type: 'unavailable', retryAfter: new Date(now - 60_000).toUTCString() })
      .inject({ type: 'rate-limited', retryAfter: 'soon' })
      .inject({ type: 'rate-limited', retryAfter: '1' })
      .inject({ type: 'rate-limited', retryAfter: '0.5' })
      .inject({ type: 'rate-limited', retryAfter: '999999' });
    const s = recordingSleeper();
    const events = auditEvents(2).map((e) => ({
      ...e,
      event_timestamp: new Date(now).toISOString(),
    }));
    const r = await deliverEvents(exporter({}, { sleep: s.sleep, now: () => now }), events);
    expect(r.outcomes).toEqual(['accepted', 'accepted']);
    // Backoff 100, 200, 400; then Retry-After 1 s (over the floor of 800); '0.5' is no
    // delay-seconds (absent: the backoff's 1000); 999999 s is capped at 5 minutes.
    expect(s.delays).toEqual([100, 200, 400, 1000, 1000, 300_000]);
    expect(Math.min(...s.delays)).toBeGreaterThanOrEqual(100);
  });
});

describe('a rejection storm is not poison (behaviour 5)', () => {
  it('a 400 that is not DataStorage’s problem+json (an ingress, a WAF) is never bisected nor dead-lettered: backed off, kept, reported', async () => {
    ds.inject(
      { type: 'status', status: 400, rawBody: '<html><h1>400 Bad Request</h1>nginx</html>' },
      6,
    );
    const s = recordingSleeper();
    const events = auditEvents(8);
    const r = await deliverEvents(exporter({}, { sleep: s.sleep }), events);
    expect(r.outcomes).toEqual(Array(8).fill('accepted'));
    expect(ds.requests.map((q) => [q.events, q.status])).toEqual([
      ...Array(6).fill([8, 400]),
      [8, 201],
    ]);
    expect(receivedIds()).toEqual(ids(events));
    expect(readJsonLines(deadLetterPath())).toEqual([]);
    expect(await metrics.sum('kubernaut.audit.dead_lettered')).toBe(0);
    expect(await metrics.sum('kubernaut.audit.delivery.unexpected_response')).toBe(6);
    expect(s.delays).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('DataStorage rejecting every request (its problem+json, no index) dead-letters nothing: it bisects once, then backs off with the records kept', async () => {
    const clock = manualClock(Date.now());
    const ac = new AbortController();
    // Every request rejected for a while (a server clock far ahead, a broken deployment).
    ds.inject({ type: 'schema-error' }, 40);
    const s = clockSleeper(clock, ac, 1_000);
    const events = auditEvents(64);
    const r = await deliverEvents(exporter({}, { sleep: s.sleep, now: clock.now }), events, {
      signal: ac.signal,
    });
    expect(r.outcomes).toEqual(Array(64).fill('accepted'));
    expect(readJsonLines(deadLetterPath())).toEqual([]);
    expect(await metrics.sum('kubernaut.audit.dead_lettered')).toBe(0);
    // One bisection down to a lone event (64, 32, …, 1) and a few neighbours set aside, then
    // the whole batch again after each backoff; never 127 requests per round, no dead letter.
    const sizes = ds.requests.map((q) => q.events);
    expect(sizes.slice(0, 7)).toEqual([64, 32, 16, 8, 4, 2, 1]);
    const firstRound = sizes.indexOf(64, 1);
    expect(firstRound).toBeGreaterThan(6);
    expect(firstRound).toBeLessThanOrEqual(12);
    expect(sizes.slice(firstRound).every((n) => n === 64)).toBe(true);
    expect(receivedIds()).toEqual(ids(events));
    expect(diagCapture.messages.some((m) => /rejects every request/.test(m))).toBe(true);
  });

  it('a lone event DataStorage rejects (no index) is dead-lettered once DataStorage accepted its siblings', async () => {
    const events = auditEvents(9);
    const bad = events[8]!.correlation_id; // the last one: bisection ends on it
    ds.poison((e) => e.correlation_id === bad, 'schema');
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual([...Array(8).fill('accepted'), 'dead_lettered']);
    expect(readJsonLines(deadLetterPath())).toMatchObject([
      { reason: 'rejected', status: 400, event: events[8] },
    ]);
  });

  it('bad events in a row at the head do not block the good ones behind them: each is dead-lettered once they are accepted', async () => {
    const events = auditEvents(6);
    const bad = new Set([events[0]!.correlation_id, events[1]!.correlation_id]);
    ds.poison((e) => bad.has(e.correlation_id), 'schema');
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(['dead_lettered', 'dead_lettered', ...Array(4).fill('accepted')]);
    expect(receivedIds()).toEqual(ids(events.slice(2)));
  });

  it('a lone event too large for DataStorage (413) does not block the events behind it', async () => {
    await ds.close();
    ds = await FaultServer.start({ maxBodyBytes: 100_000 });
    const big = auditEvent({ error_message: 'x'.repeat(150_000) });
    const small = auditEvents(2);
    const r = await deliverEvents(exporter(), [big, ...small]);
    expect(r.outcomes).toEqual(['dead_lettered', 'accepted', 'accepted']);
    expect(receivedIds()).toEqual(ids(small));
    expect(readJsonLines(deadLetterPath())).toMatchObject([{ reason: 'too_large', status: 413 }]);
  });

  it.each([
    ['naming it', 'index'],
    ['without an index', 'schema'],
  ] as const)('a lone event DataStorage rejects every time (%s) is dead-lettered once another lane gets an event accepted, also after its rejections were taken for a storm', async (_how, mode) => {
    const clock = manualClock(Date.now());
    const ac = new AbortController();
    const [bad] = auditEvents(1) as [AuditEventRequest];
    ds.poison((e) => e.correlation_id === bad.correlation_id, mode);
    const other = auditEvent();
    let e!: KubernautAuditExporter;
    // Alone in its batch (no siblings): its rejections in a row are taken for a storm. Then
    // another lane's event is accepted: the evidence that the event, not DataStorage, is bad.
    const s = clockSleeper(clock, ac, 40, async (_ms, call) => {
      if (call !== 10) return;
      await deliverEvents(e, [other]);
      clock.advance(5); // the lane's next attempt comes a little later
    });
    e = exporter({}, { sleep: s.sleep, now: clock.now });
    const r = await deliverEvents(e, [bad], { signal: ac.signal });
    expect(r.outcomes).toEqual(['dead_lettered']);
    expect(readJsonLines(deadLetterPath())).toMatchObject([
      { reason: 'rejected', status: 400, event: bad },
    ]);
    expect(receivedIds()).toEqual([other.correlation_id]);
    // Dead-lettered at the first rejection after the acceptance, not left to retry for ever.
    expect(s.delays.length).toBeLessThanOrEqual(11);
  });

  it('DataStorage naming an index on every request (a clock far ahead) dead-letters nothing either', async () => {
    const clock = manualClock(Date.now());
    const ac = new AbortController();
    ds.inject({ type: 'reject-index', index: 0 }, 30);
    const s = clockSleeper(clock, ac, 1_000);
    const events = auditEvents(5);
    const r = await deliverEvents(exporter({}, { sleep: s.sleep, now: clock.now }), events, {
      signal: ac.signal,
    });
    expect(r.outcomes).toEqual(Array(5).fill('accepted'));
    expect(readJsonLines(deadLetterPath())).toEqual([]);
    expect(receivedIds()).toEqual(ids(events));
  });
});

describe('poison: an event DataStorage answers 500 forever (behaviour 4, the deliverer part)', () => {
  it('is bisected out and dead-lettered as poison (replayable) once it failed the same way ≥ 5 times over ≥ 1 minute while DataStorage accepted other events', async () => {
    const clock = manualClock(Date.now());
    const ac = new AbortController();
    const events = auditEvents(4);
    const bad = events[2]!.correlation_id;
    ds.poison((e) => e.correlation_id === bad, { status: 500, detail: 'pq: invalid input' });
    const others: AuditEventRequest[] = [];
    let e!: KubernautAuditExporter;
    // While the batch waits, other traffic (another lane) gets through.
    const s = clockSleeper(clock, ac, 60, async () => {
      const other = auditEvent();
      others.push(other);
      await deliverEvents(e, [other]);
    });
    e = exporter(
      { retry: { initialDelayMillis: 100, maxDelayMillis: 10_000, multiplier: 2, jitter: 0 } },
      { sleep: s.sleep, now: clock.now },
    );
    const r = await deliverEvents(e, events, { signal: ac.signal });
    expect(r.outcomes).toEqual(['accepted', 'accepted', 'dead_lettered', 'accepted']);
    const dl = readJsonLines(deadLetterPath());
    expect(dl).toMatchObject([{ reason: 'poison', status: 500, event: events[2] }]);
    expect(dl[0]!.detail).toMatch(/pq: invalid input/);
    expect(await metrics.sum('kubernaut.audit.poison')).toBe(1);
    expect(
      await metrics.sum('kubernaut.audit.dead_lettered', { 'kubernaut.audit.reason': 'poison' }),
    ).toBe(1);
    // ≥ 5 attempts of the lone event, over ≥ 1 minute of the clock.
    const lone = ds.requests.filter((q) => q.events === 1 && q.status === 500);
    expect(lone.length).toBeGreaterThanOrEqual(5);
    expect(s.delays.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(60_000);
    expect(receivedIds().filter((id) => id !== bad)).toEqual(
      expect.arrayContaining(ids([events[0]!, events[1]!, events[3]!])),
    );
  });

  it('DataStorage down (every request 500 for minutes, nothing accepted anywhere) is not poison: nothing bisected or dead-lettered', async () => {
    const clock = manualClock(Date.now());
    const ac = new AbortController();
    ds.inject({ type: 'status', status: 500 }, 25);
    const s = clockSleeper(clock, ac, 1_000);
    const events = auditEvents(10);
    const e = exporter(
      { retry: { initialDelayMillis: 100, maxDelayMillis: 10_000, multiplier: 2, jitter: 0 } },
      { sleep: s.sleep, now: clock.now },
    );
    const r = await deliverEvents(e, events, { signal: ac.signal });
    expect(r.outcomes).toEqual(Array(10).fill('accepted'));
    expect(ds.requests.every((q) => q.events === 10)).toBe(true);
    expect(s.delays.reduce((a, b) => a + b, 0)).toBeGreaterThan(60_000);
    expect(readJsonLines(deadLetterPath())).toEqual([]);
    expect(await metrics.sum('kubernaut.audit.poison')).toBe(0);
  });
});
