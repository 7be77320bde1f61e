// SPDX-License-Identifier: Apache-2.0
/* Full OpenAPI validation (`openapiSpec` / --openapi): schema failures carry no index. */
import { eventIndexFromProblem } from '@kubernaut/datastorage-contract';
import {
  minimalEvent,
  postBatch,
  realisticPayload,
  request,
  sampleEventTypes,
  specPath,
} from '@kubernaut/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, pgliteBackend } from './backends.ts';

describe('server started with the OpenAPI spec', () => {
  let h: Harness;
  const sample = sampleEventTypes()[0]!;
  const valid = () =>
    minimalEvent({
      event_type: sample.eventType,
      event_category: sample.category,
      event_data: realisticPayload(sample.eventType),
    });

  beforeAll(async () => {
    h = await pgliteBackend.start({ openapiSpec: specPath() });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('accepts events whose payload matches the schema of their event type', async () => {
    const r = await postBatch(h.server.url, [valid(), valid()]);
    expect(r.status).toBe(201);
  });

  it('rejects a batch with a schema-invalid payload: 400 without an index', async () => {
    // The payload schema's required fields are missing (only event_type is left).
    const bad = { ...valid(), event_data: { event_type: sample.eventType } };
    const r = await postBatch(h.server.url, [valid(), bad, valid()]);
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/did not pass OpenAPI schema validation \(\d+ errors\)$/);
    expect(eventIndexFromProblem(r.body)).toBeUndefined();
  });

  it('rejects an event type outside the spec mapping, and says so without an index', async () => {
    const r = await postBatch(h.server.url, [minimalEvent({ event_type: 'not.in.the.spec' })]);
    expect(r.status).toBe(400);
    expect(eventIndexFromProblem(r.body)).toBeUndefined();
    const single = await request(h.server.url, 'POST', '/api/v1/audit/events', {
      ...valid(),
      event_data: { event_type: sample.eventType },
    });
    expect(single.status).toBe(400);
    expect(single.body.detail).toMatch(/did not pass OpenAPI schema validation/);
  });

  it('still applies the handler checks with an index after the schema passes', async () => {
    const stale = valid();
    stale.event_timestamp = new Date(Date.now() - 8 * 24 * 3_600_000).toISOString();
    const r = await postBatch(h.server.url, [valid(), stale]);
    expect(r.status).toBe(400);
    expect(eventIndexFromProblem(r.body)).toBe(1);
  });
});
