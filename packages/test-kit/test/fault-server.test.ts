// SPDX-License-Identifier: Apache-2.0
/*
 * The kit's fault-injecting DataStorage behaves as the suites rely on: it stores valid batches
 * all or nothing, answers scripted faults in order, and records what breaks the spec or the
 * contract instead of hiding it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  auditEvent,
  auditEvents,
  FaultServer,
  manualClock,
  recordingSleeper,
} from '../src/index.ts';

let ds: FaultServer;
beforeEach(async () => {
  ds = await FaultServer.start();
});
afterEach(async () => {
  await ds.close();
});

const post = (body: unknown) =>
  fetch(`${ds.url}/api/v1/audit/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('FaultServer', () => {
  it('stores a valid batch and answers 201 with ids in input order', async () => {
    const events = auditEvents(3);
    const r = await post(events);
    expect(r.status).toBe(201);
    expect(((await r.json()) as { event_ids: string[] }).event_ids).toHaveLength(3);
    expect(ds.received().map((s) => s.event.correlation_id)).toEqual(
      events.map((e) => e.correlation_id),
    );
    expect(ds.specViolations).toEqual([]);
  });

  it('answers injected faults in order, one per batch request, storing nothing', async () => {
    ds.inject({ type: 'unavailable', retryAfter: '1' }).inject({ type: 'reject-index', index: 0 });
    const first = await post([auditEvent()]);
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('1');
    const second = await post([auditEvent()]);
    expect(second.status).toBe(400);
    expect(((await second.json()) as { detail: string }).detail).toMatch(/event at index 0/);
    expect((await post([auditEvent()])).status).toBe(201);
    expect(ds.received()).toHaveLength(1);
  });

  it('answers an injected raw page (an ingress, a proxy) and a poisoned event with any status', async () => {
    ds.inject({ type: 'status', status: 200, rawBody: '<html>ok</html>' });
    const page = await post([auditEvent()]);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html');
    expect(await page.text()).toBe('<html>ok</html>');
    const bad = auditEvent();
    ds.poison((e) => e.correlation_id === bad.correlation_id, { status: 500, detail: 'boom' });
    const r = await post([auditEvent(), bad]);
    expect(r.status).toBe(500);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(((await r.json()) as { detail: string }).detail).toBe('boom');
    expect(ds.received()).toHaveLength(0);
  });

  it('records an event that breaks the contract as a spec violation (tests assert none)', async () => {
    const r = await post([{ ...auditEvent(), event_outcome: 'maybe' }]);
    expect(r.status).toBe(400);
    expect(ds.specViolations).not.toEqual([]);
    ds.specViolations.length = 0;
  });
});

describe('clock helpers', () => {
  it('a manual clock moves only when told, a recording sleeper returns at once', async () => {
    const clock = manualClock(10);
    clock.advance(5);
    expect(clock.now()).toBe(15);
    clock.set(1);
    expect(clock.now()).toBe(1);
    const s = recordingSleeper((ms) => clock.advance(ms));
    await s.sleep(100);
    await s.sleep(200);
    expect(s.delays).toEqual([100, 200]);
    expect(clock.now()).toBe(301);
  });
});
