// SPDX-License-Identifier: Apache-2.0
/*
 * The management port of the programs in this repository
 * (`@kubernaut/datastorage-contract/management`): one implementation for the reference
 * DataStorage server and the audit OTLP bridge.
 *
 *   GET /metrics   the program's OpenTelemetry metrics in the Prometheus text format, through
 *                  OTel's own Prometheus exporter (`@opentelemetry/exporter-prometheus`)
 *   GET /healthz   liveness: 200 while the process serves HTTP
 *   GET /livez     the same (the Kubernetes spelling)
 *   GET /readyz    readiness: the program's own check; 503 with the reason and Retry-After
 *
 * GET and HEAD only. Unauthenticated, like the Collector's own telemetry port and upstream's
 * health port: expose it to the cluster's probes and scrapers, not to clients. Answers are JSON
 * (`{status}`) or RFC 7807 problems, as on the API ports.
 *
 * Needs `@opentelemetry/exporter-prometheus`, `@opentelemetry/sdk-metrics` and
 * `@opentelemetry/resources` (optional peer dependencies of this package: the main entry never
 * loads them).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, type MetricReader } from '@opentelemetry/sdk-metrics';
import { closeGracefully, sendJson, sendProblem } from './http.ts';

/** What a readiness check answers. */
export interface Readiness {
  ready: boolean;
  /** Why not ready (the problem's `detail`), or a short word when ready. */
  detail: string;
}

/** A MeterProvider whose metrics a management server serves on `/metrics`. */
export interface PrometheusMetrics {
  /** Give it to the instruments' owners (or register it globally). */
  readonly meterProvider: MeterProvider;
  /** Answers a scrape with the current metrics. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Shuts the provider down (observable callbacks stop). */
  shutdown(): Promise<void>;
}

/**
 * A MeterProvider read by OTel's Prometheus exporter on each scrape (no push, no interval): dots
 * in names become underscores, monotonic counters end in `_total`, the unit is in the `# UNIT`
 * line, and the resource (`service.name`) is in `target_info`.
 */
export function createPrometheusMetrics(serviceName: string): PrometheusMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    // The exporter is built on its own (pinned) copy of the metrics SDK: same API, other class.
    readers: [exporter as unknown as MetricReader],
  });
  return {
    meterProvider,
    handle: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: () => meterProvider.shutdown().catch(() => undefined),
  };
}

export interface ManagementServerOptions {
  /** Interface to listen on. */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Served on `/metrics` (404 without). */
  metrics?: PrometheusMetrics | undefined;
  /** The readiness check of `/readyz`; a rejection or a throw answers 503. */
  readiness: () => Readiness | Promise<Readiness>;
  /** Told about errors of the server and of the readiness check. */
  onError?: (message: string, err: unknown) => void;
}

/** A running management server. */
export interface ManagementServer {
  /** Base URL, e.g. `http://127.0.0.1:8081`. */
  readonly url: string;
  readonly port: number;
  /** Stops it; scrapes and probes in flight are cut, not waited for. */
  close(): Promise<void>;
}

/** The paths a management server answers. */
export const MANAGEMENT_PATHS = ['/metrics', '/healthz', '/livez', '/readyz'] as const;

/** Starts a management server; resolves once it listens. */
export async function startManagementServer(
  options: ManagementServerOptions,
): Promise<ManagementServer> {
  const onError = options.onError ?? (() => undefined);
  const notReady = (res: ServerResponse, detail: string) =>
    sendProblem(res, 503, 'service-unavailable', 'Service Unavailable', detail, {
      headers: { 'retry-after': '5' },
    });
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendProblem(res, 405, 'method-not-allowed', 'Method Not Allowed');
      return;
    }
    if (path === '/metrics' && options.metrics) {
      options.metrics.handle(req, res);
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      Promise.resolve()
        .then(options.readiness)
        .then(
          (r) => (r.ready ? sendJson(res, 200, { status: 'ready' }) : notReady(res, r.detail)),
          (err: unknown) => {
            onError('readiness check failed', err);
            notReady(res, 'readiness check failed');
          },
        );
      return;
    }
    sendProblem(res, 404, 'not-found', 'Not Found', `no resource at ${path}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => onError('management server error', err));
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () => closeGracefully(server, Promise.resolve()),
  };
}
