// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP contract against upstream's own expectations (jordigilh/kubernaut DataStorage
 * handler and middleware tests) and against hostile input: every answer is a clear 4xx, never
 * a 500 or a silent change of what the client sent.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { eventIndexFromProblem, PROBLEM_CONTENT_TYPE } from '@kubernaut/datastorage-contract';
import {
  minimalEvent,
  postBatch,
  queryEvents,
  request,
  TEST_AUTH_HEADERS,
  verifyChain,
} from '@kubernaut/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonLogger } from '../src/logger.ts';
import { backends, type Harness, pgliteBackend } from './backends.ts';

const PROBLEM = 'https://kubernaut.ai/problems/';

describe.each(backends)('HTTP contract on $name', (backend) => {
  let h: Harness;
  let base: string;
  beforeAll(async () => {
    h = await backend.start();
    base = h.server.url;
  });
  afterAll(async () => {
    await h?.stop();
  });

  describe('content type', () => {
    it.each([
      ['text/plain', 415],
      ['application/x-www-form-urlencoded', 415],
      ['multipart/form-data; boundary=x', 415],
      [undefined, 415],
      ['application/json', 201],
      ['application/json; charset=utf-8', 201],
      ['Application/JSON', 201],
      ['application/merge-patch+json', 415],
    ])('a write with Content-Type %s answers %i', async (contentType, status) => {
      const ev = minimalEvent();
      const r = await request(base, 'POST', '/api/v1/audit/events/batch', JSON.stringify([ev]), {
        'content-type': contentType ?? null,
      });
      expect(r.status).toBe(status);
      if (status === 415) {
        expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
        expect(r.body.type).toBe(`${PROBLEM}unsupported-media-type`);
        const q = await queryEvents(base, { correlation_id: ev.correlation_id as string });
        expect(q.pagination.total).toBe(0);
      }
    });

    it('requires JSON on the single-event and verify-chain endpoints too', async () => {
      for (const path of ['/api/v1/audit/events', '/api/v1/audit/verify-chain']) {
        const r = await request(base, 'POST', path, '{"correlation_id":"x"}', {
          'content-type': 'text/plain',
        });
        expect(r.status).toBe(415);
      }
    });
  });

  describe('upstream answers', () => {
    it('echoes X-Request-ID, and gives one when the client sent none', async () => {
      const mine = `req-${randomUUID()}`;
      const ok = await request(base, 'GET', '/api/v1/audit/events?limit=1', undefined, {
        'x-request-id': mine,
      });
      expect(ok.headers.get('x-request-id')).toBe(mine);
      const bad = await request(base, 'POST', '/api/v1/audit/events/batch', '[]', {
        'x-request-id': mine,
      });
      expect(bad.status).toBe(400);
      expect(bad.headers.get('x-request-id')).toBe(mine);
      const none = await request(base, 'GET', '/readyz');
      expect(none.headers.get('x-request-id')).toMatch(/^[\w-]{8,}$/);
    });

    it('accepts an outer event_type that differs from event_data.event_type', async () => {
      const ev = minimalEvent({
        event_type: 'gateway.signal.received',
        event_data: { event_type: 'gateway.crd.created', n: 1 },
      });
      const r = await postBatch(base, [ev]);
      expect(r.status).toBe(201);
      const q = await queryEvents(base, { correlation_id: ev.correlation_id as string });
      expect(q.data[0]).toMatchObject({
        event_type: 'gateway.signal.received',
        event_data: { event_type: 'gateway.crd.created' },
      });
    });

    it.each([
      ['malformed JSON', '[{"version":', 'invalid_request'],
      ['a single object', JSON.stringify(minimalEvent()), 'invalid_request'],
      ['a string', '"events"', 'invalid_request'],
      ['null', 'null', 'validation-error'],
    ])('batch endpoint: %s is a 400', async (_label, body, type) => {
      const r = await postBatch(base, body);
      expect(r.status).toBe(400);
      expect(r.body.type).toBe(`${PROBLEM}${type}`);
    });

    it.each([
      ['malformed JSON', '{"version":', 'invalid_request'],
      ['null', 'null', 'validation-error'],
    ])('single-event endpoint: %s is a 400', async (_label, body, type) => {
      const r = await request(base, 'POST', '/api/v1/audit/events', body);
      expect(r.status).toBe(400);
      expect(r.body.type).toBe(`${PROBLEM}${type}`);
    });

    it('answers 413 request-too-large for a body over 5 MiB', async () => {
      const r = await postBatch(base, `[${' '.repeat(5 * 1024 * 1024 + 10)}]`);
      expect(r.status).toBe(413);
      expect(r.body.type).toBe(`${PROBLEM}request-too-large`);
      expect(r.body.title).toBe('Request Entity Too Large');
    });

    it('answers invalid-request-body for a verify-chain body that is not JSON', async () => {
      for (const body of ['', '{oops']) {
        const r = await request(base, 'POST', '/api/v1/audit/verify-chain', body);
        expect(r.status).toBe(400);
        expect(r.body.type).toBe(`${PROBLEM}invalid-request-body`);
      }
    });

    it('treats parent_event_id: null as naming a parent that does not exist', async () => {
      const r = await postBatch(base, [minimalEvent(), minimalEvent({ parent_event_id: null })]);
      expect(r.status).toBe(400);
      expect(r.body.detail).toBe('event at index 1: parent event does not exist');
      const one = await request(
        base,
        'POST',
        '/api/v1/audit/events',
        minimalEvent({ parent_event_id: null }),
      );
      expect(one.status).toBe(400);
      expect(one.body.detail).toBe('parent event does not exist');
    });

    it('leaves tampered_events out of a verify-chain answer when there are none', async () => {
      const ev = minimalEvent();
      expect((await postBatch(base, [ev])).status).toBe(201);
      const r = await request(base, 'POST', '/api/v1/audit/verify-chain', {
        correlation_id: ev.correlation_id,
      });
      expect(r.body).toMatchObject({ is_valid: true, total_events: 1, verified_events: 1 });
      expect(r.body).not.toHaveProperty('tampered_events');
    });
  });

  describe('hostile input', () => {
    it.each([
      5_000, 100_000,
    ])('rejects event_data nested %i levels with a 400 naming the event', async (levels) => {
      let inner = '1';
      inner = `${'['.repeat(levels)}${inner}${']'.repeat(levels)}`;
      const ev = minimalEvent();
      const text = JSON.stringify([minimalEvent(), ev]).replace(
        /"n":0\}\}\]$/,
        `"n":0,"deep":${inner}}}]`,
      );
      expect(text).toContain('"deep":[[[');
      const r = await postBatch(base, text);
      expect(r.status).toBe(400);
      expect(r.body.type).toBe(`${PROBLEM}validation-error`);
      expect(eventIndexFromProblem(r.body)).toBe(1);
      const single = await request(
        base,
        'POST',
        '/api/v1/audit/events',
        JSON.stringify(ev).replace(/"n":0\}\}$/, `"n":0,"deep":${inner}}}`),
      );
      expect(single.status).toBe(400);
    });

    it.each([
      ['1e400', '1e400'],
      ['-1e400', '-1e400'],
      ['1e-400', '1e-400'],
      ['0.5e-330', '0.5e-330'],
      ['1 followed by 400 zeros', `1${'0'.repeat(400)}`],
    ])('rejects the event_data number %s that a double cannot hold', async (_label, literal) => {
      const ok = minimalEvent();
      const ev = minimalEvent();
      const text = `[${JSON.stringify(ok)},${JSON.stringify(ev).replace(/"n":0\}/, `"n":0,"x":${literal}}`)}]`;
      const r = await postBatch(base, text);
      expect(r.status).toBe(400);
      expect(r.body.type).toBe(`${PROBLEM}invalid_event_data`);
      expect(eventIndexFromProblem(r.body)).toBe(1);
      for (const e of [ok, ev]) {
        const q = await queryEvents(base, { correlation_id: e.correlation_id as string });
        expect(q.pagination.total).toBe(0);
      }
    });

    it('still accepts ordinary numbers, including ones written with exponents', async () => {
      const ev = minimalEvent();
      const text = JSON.stringify([ev]).replace(
        /"n":0\}/,
        '"n":0,"a":1e300,"b":-2.5E-300,"c":0.0,"d":-0,"e":1e-320,"f":"1e400"}',
      );
      const r = await postBatch(base, text);
      expect(r.status).toBe(201);
      expect((await verifyChain(base, ev.correlation_id as string)).is_valid).toBe(true);
    });

    it.each([
      'correlation_id=a%00b',
      'event_type=%00',
      'event_category=x%00',
      'severity=%00',
      'detail_key=k&detail_value=v%00',
      'since=1h%00',
    ])('rejects a NUL character in a query parameter (%s) with 400', async (qs) => {
      const r = await request(base, 'GET', `/api/v1/audit/events?${qs}`);
      expect(r.status).toBe(400);
      expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
    });

    it('rejects a NUL character in the verify-chain correlation_id with 400', async () => {
      const r = await request(base, 'POST', '/api/v1/audit/verify-chain', {
        correlation_id: 'a\u0000b',
      });
      expect(r.status).toBe(400);
      expect(r.body.type).toBe(`${PROBLEM}invalid-correlation-id`);
    });

    it.each([
      'since=90000000d',
      'since=0000-01-01T00:00:00Z',
      'until=0000-12-31',
      'since=10000-01-01T00:00:00Z',
      'since=99999999999999999999h',
      'until=-5h',
    ])('rejects an out-of-range time (%s) with 400', async (qs) => {
      const r = await request(base, 'GET', `/api/v1/audit/events?${qs}`);
      expect(r.status).toBe(400);
      expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
    });

    it('accepts the widest valid times', async () => {
      const r = await request(
        base,
        'GET',
        '/api/v1/audit/events?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59.999999Z',
      );
      expect(r.status).toBe(200);
    });
  });
});

describe('a client that aborts its upload', () => {
  let h: Harness;
  const lines: Array<Record<string, unknown>> = [];
  let aborted: () => void;
  const abortLogged = new Promise<void>((resolve) => {
    aborted = resolve;
  });
  beforeAll(async () => {
    h = await pgliteBackend.start({
      quiet: false,
      logger: createJsonLogger({
        level: 'debug',
        stream: {
          write: (l: string) => {
            const line = JSON.parse(l) as Record<string, unknown>;
            lines.push(line);
            if (line.msg === 'client aborted the request') aborted();
          },
        },
      }),
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('is logged as an aborted request, not as a database outage', async () => {
    const url = new URL(h.server.url);
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: '/api/v1/audit/events/batch',
      headers: {
        'content-type': 'application/json',
        'content-length': '100000',
        ...TEST_AUTH_HEADERS,
      },
    });
    req.on('error', () => {});
    // The headers and part of the body reach the server before the connection closes (TCP
    // keeps the order), so the server is reading the body when the client goes away.
    req.write('[{"version":"1.0",', () => req.destroy());
    await abortLogged;
    expect(lines.filter((l) => /database/i.test(String(l.msg)))).toEqual([]);
    expect(lines.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
  });
});
