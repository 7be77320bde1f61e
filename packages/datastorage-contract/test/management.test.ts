// SPDX-License-Identifier: Apache-2.0
/*
 * The shared management port: Prometheus text from a real OTel MeterProvider (names, units,
 * `_total`, the resource in target_info), liveness on /healthz and /livez, readiness from the
 * program's check (503 with its reason and Retry-After, also when the check fails), GET/HEAD
 * only, 404 elsewhere.
 */
import {
  createPrometheusMetrics,
  type ManagementServer,
  type Readiness,
  startManagementServer,
} from '@kubernaut/datastorage-contract/management';
import { afterEach, describe, expect, it } from 'vitest';

const open: Array<{ close(): Promise<void> } | { shutdown(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await ('close' in o ? o.close() : o.shutdown());
});

async function start(
  readiness: () => Readiness | Promise<Readiness>,
  withMetrics = true,
): Promise<{
  server: ManagementServer;
  errors: string[];
  metrics: ReturnType<typeof createPrometheusMetrics>;
}> {
  const metrics = createPrometheusMetrics('management-test');
  open.push(metrics);
  const errors: string[] = [];
  const server = await startManagementServer({
    host: '127.0.0.1',
    port: 0,
    metrics: withMetrics ? metrics : undefined,
    readiness,
    onError: (message) => errors.push(message),
  });
  open.push(server);
  return { server, errors, metrics };
}

describe('management server', () => {
  it('serves the MeterProvider in the Prometheus text format', async () => {
    const { server, metrics } = await start(() => ({ ready: true, detail: 'ready' }));
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const meter = metrics.meterProvider.getMeter('test-scope');
    meter.createCounter('kubernaut.test.things', { unit: '{thing}' }).add(3, { 'k.v': 'x' });
    meter.createHistogram('kubernaut.test.wait', { unit: 's' }).record(0.25);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('kubernaut_test_things_total{k_v="x",otel_scope_name="test-scope"} 3');
    expect(text).toContain('# UNIT kubernaut_test_wait s');
    expect(text).toContain('kubernaut_test_wait_sum{otel_scope_name="test-scope"} 0.25');
    expect(text).toMatch(/^target_info\{service_name="management-test"\} 1$/m);
  });

  it('answers liveness on /healthz and /livez whatever readiness says', async () => {
    const { server } = await start(() => ({ ready: false, detail: 'spool not durable' }));
    for (const path of ['/healthz', '/livez']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    }
  });

  it('answers readiness from the check: 200, or 503 with the reason and Retry-After', async () => {
    let state: Readiness = { ready: true, detail: 'ready' };
    const { server } = await start(async () => state);
    const ok = await fetch(`${server.url}/readyz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ready' });
    state = { ready: false, detail: 'spool over its high watermark' };
    const down = await fetch(`${server.url}/readyz`);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(down.headers.get('content-type')).toBe('application/problem+json');
    expect(((await down.json()) as { detail: string }).detail).toBe(
      'spool over its high watermark',
    );
  });

  it('answers 503 when the readiness check throws, and reports the error', async () => {
    const { server, errors } = await start(() => {
      throw new Error('boom');
    });
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toBe('readiness check failed');
    expect(errors).toEqual(['readiness check failed']);
  });

  it('takes GET and HEAD only; unknown paths and /metrics without a provider are 404', async () => {
    const { server } = await start(() => ({ ready: true, detail: 'ready' }), false);
    const post = await fetch(`${server.url}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${server.url}/healthz`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${server.url}/v1/logs`)).status).toBe(404);
  });
});
