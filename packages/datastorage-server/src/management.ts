// SPDX-License-Identifier: Apache-2.0
/*
 * The management port (upstream serves health on 8081): GET /metrics (Prometheus text),
 * GET /healthz (the process serves), GET /readyz (the same readiness as the API port's).
 * Unauthenticated, like upstream's health and metrics ports: expose it to the cluster's
 * probes and scrapers, not to clients.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeGracefully, sendJson, sendProblem } from '@kubernaut/datastorage-contract/http';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { DataStorageLogger } from './logger.ts';

export interface ManagementServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startManagementServer(options: {
  host: string;
  port: number;
  exporter: PrometheusExporter | undefined;
  readiness: () => Promise<{ ready: boolean; detail: string }>;
  logger: DataStorageLogger;
}): Promise<ManagementServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendProblem(res, 405, 'method-not-allowed', 'Method Not Allowed');
      return;
    }
    if (path === '/metrics' && options.exporter) {
      options.exporter.getMetricsRequestHandler(req, res);
      return;
    }
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      options.readiness().then(
        (r) => {
          if (r.ready) sendJson(res, 200, { status: 'ready' });
          else
            sendProblem(res, 503, 'service-unavailable', 'Service Unavailable', r.detail, {
              headers: { 'retry-after': '5' },
            });
        },
        (err: unknown) => {
          options.logger.error('readiness check failed', { err });
          sendProblem(res, 503, 'service-unavailable', 'Service Unavailable');
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
  server.on('error', (err) => options.logger.error('management server error', { err }));
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    // Scrapes and probes are not waited for: their connections are cut.
    close: () => closeGracefully(server, Promise.resolve()),
  };
}
