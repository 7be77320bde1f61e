#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/*
 * kubernaut-audit-otlp-bridge: runs the audit OTLP bridge as a process.
 *
 *   kubernaut-audit-otlp-bridge --port 4318 --datastorage-url URL --spool-dir DIR \
 *     [--host 0.0.0.0] [--bearer-token-file F] [--max-body-bytes N] [--max-request-values N]
 *     [--management-port 8888]
 *
 * Environment equivalents: PORT, HOST, KUBERNAUT_AUDIT_ENDPOINT, KUBERNAUT_AUDIT_SPOOL_DIR,
 * KUBERNAUT_AUDIT_BRIDGE_TOKEN_FILE, KUBERNAUT_AUDIT_BRIDGE_MAX_BODY_BYTES,
 * KUBERNAUT_AUDIT_BRIDGE_MAX_REQUEST_VALUES, KUBERNAUT_AUDIT_BRIDGE_MANAGEMENT_PORT. Flags win.
 * The exporter's own settings (DataStorage token, TLS, timeouts) come from its environment
 * variables. Invalid flags or values (a port out of range, a DataStorage URL that is not
 * http(s)) exit 2 with the usage; a bridge that cannot start (port in use, spool locked, no
 * usable token) exits 1, with one JSON line saying why.
 *
 * Metrics: one OTel MeterProvider, registered globally and given to the exporter and the
 * processor, read by OTel's Prometheus exporter on the management port (default 8888, the port
 * of the Collector's own telemetry; 0: no management port and no metrics), which also answers
 * /healthz, /livez and /readyz.
 * Logs are JSON lines on stderr. SIGTERM/SIGINT: stop accepting, finish the requests in flight,
 * shut the processor down (undelivered records stay in the spool for the next start). A second
 * signal while that runs (up to 30 s with DataStorage away) exits at once, 128 + its number:
 * every record acknowledged is on the spool already, the rest was never acknowledged.
 */
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { describeRule, errorText, parseNumber } from '@kubernaut/datastorage-contract/config';
import { createPrometheusMetrics } from '@kubernaut/datastorage-contract/management';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import { type DiagLogger, DiagLogLevel, diag, metrics } from '@opentelemetry/api';
import { type BridgeLogger, type OtlpBridge, startOtlpBridge } from './bridge.ts';

const USAGE = `usage: kubernaut-audit-otlp-bridge --datastorage-url URL --spool-dir DIR
  [--port 4318] [--host 0.0.0.0] [--bearer-token-file FILE] [--max-body-bytes N]
  [--max-request-values N] [--management-port N (8888; 0: none)]
env: KUBERNAUT_AUDIT_ENDPOINT, KUBERNAUT_AUDIT_SPOOL_DIR, PORT, HOST,
     KUBERNAUT_AUDIT_BRIDGE_TOKEN_FILE, KUBERNAUT_AUDIT_BRIDGE_MAX_BODY_BYTES,
     KUBERNAUT_AUDIT_BRIDGE_MAX_REQUEST_VALUES, KUBERNAUT_AUDIT_BRIDGE_MANAGEMENT_PORT`;

const writeLine = (level: string, message: string, fields?: Record<string, unknown>) => {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
  );
};
const logger: BridgeLogger = (level, message, fields) => writeLine(level, message, fields);

// OTel diag (processor, exporter, spool reports) goes to the same JSON lines. Component loggers
// (`diag.createComponentLogger`) pass their namespace first and the message second.
const diagLine =
  (level: string) =>
  (first: string, ...args: unknown[]): void => {
    const [message, rest] =
      typeof args[0] === 'string'
        ? [args[0], { component: first, ...argsField(args.slice(1)) }]
        : [first, argsField(args)];
    writeLine(level, message, rest);
  };
const diagLogger: DiagLogger = {
  error: diagLine('error'),
  warn: diagLine('warn'),
  info: diagLine('info'),
  debug: diagLine('debug'),
  verbose: diagLine('verbose'),
};

function argsField(args: unknown[]): Record<string, unknown> | undefined {
  return args.length ? { args: args.map((a) => (a instanceof Error ? a.message : a)) } : undefined;
}

const PORT = { integer: true, min: 0, max: 65535 };
const BYTES = { integer: true, min: 1 };

function fail(message: string): never {
  writeLine('error', message);
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'datastorage-url': { type: 'string' },
        'spool-dir': { type: 'string' },
        'bearer-token-file': { type: 'string' },
        'max-body-bytes': { type: 'string' },
        'max-request-values': { type: 'string' },
        'management-port': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const env = process.env;
  const str = (flag: string, envName: string) =>
    (values[flag] as string | undefined) ?? (env[envName] || undefined);

  const portText = str('port', 'PORT') ?? '4318';
  const port = parseNumber(portText, PORT);
  if (port === undefined) fail(`invalid port ${portText}: expected ${describeRule(PORT)}`);
  const managementText = str('management-port', 'KUBERNAUT_AUDIT_BRIDGE_MANAGEMENT_PORT') ?? '8888';
  const managementPort = parseNumber(managementText, PORT);
  if (managementPort === undefined) {
    fail(`invalid management port ${managementText}: expected ${describeRule(PORT)}`);
  }
  const datastorageUrl = str('datastorage-url', 'KUBERNAUT_AUDIT_ENDPOINT');
  if (!datastorageUrl) fail('missing --datastorage-url (or KUBERNAUT_AUDIT_ENDPOINT)');
  // A URL the exporter can never reach would have the bridge acknowledge records it cannot
  // deliver until someone notices.
  if (!isHttpUrl(datastorageUrl)) {
    fail(`invalid DataStorage URL ${datastorageUrl}: expected an http(s) URL`);
  }
  const spoolDir = str('spool-dir', 'KUBERNAUT_AUDIT_SPOOL_DIR');
  if (!spoolDir) fail('missing --spool-dir (or KUBERNAUT_AUDIT_SPOOL_DIR)');
  const tokenFile = str('bearer-token-file', 'KUBERNAUT_AUDIT_BRIDGE_TOKEN_FILE');
  const maxBodyText = str('max-body-bytes', 'KUBERNAUT_AUDIT_BRIDGE_MAX_BODY_BYTES');
  const maxBody = maxBodyText === undefined ? undefined : parseNumber(maxBodyText, BYTES);
  if (maxBodyText !== undefined && maxBody === undefined) {
    fail(`invalid max body bytes ${maxBodyText}: expected ${describeRule(BYTES)}`);
  }
  const maxValuesText = str('max-request-values', 'KUBERNAUT_AUDIT_BRIDGE_MAX_REQUEST_VALUES');
  const maxValues = maxValuesText === undefined ? undefined : parseNumber(maxValuesText, BYTES);
  if (maxValuesText !== undefined && maxValues === undefined) {
    fail(`invalid max request values ${maxValuesText}: expected ${describeRule(BYTES)}`);
  }

  diag.setLogger(diagLogger, { logLevel: DiagLogLevel.INFO, suppressOverrideMessage: true });

  // One MeterProvider for the whole program, set up before anything records: the bridge's,
  // the processor's and the exporter's metrics all flow into it (and anything else that reads
  // the global provider).
  const prometheus =
    managementPort > 0 ? createPrometheusMetrics('kubernaut-audit-otlp-bridge') : undefined;
  if (prometheus) metrics.setGlobalMeterProvider(prometheus.meterProvider);

  // Signals are taken from here on: one that arrives while the bridge starts stops it once it
  // has started (its spool lock is released by its own shutdown).
  let started: OtlpBridge | undefined;
  let stopSignal: string | undefined;
  const stop = (signal: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      // Acknowledged records are on the spool already: nothing is lost by not waiting.
      logger('warn', 'second signal: exiting now; undelivered records stay in the spool', {
        signal,
      });
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    stopSignal = signal;
    if (started) shutdown(started, signal);
  };
  const shutdown = (bridge: OtlpBridge, signal: string) => {
    logger('info', 'shutting down', { signal });
    bridge.close().then(
      async () => {
        await prometheus?.shutdown();
        process.exit(0);
      },
      (err: unknown) => {
        logger('error', 'shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  started = await startOtlpBridge({
    host: str('host', 'HOST') ?? '0.0.0.0',
    port,
    exporter: new KubernautAuditExporter({
      url: datastorageUrl,
      ...(prometheus && { meterProvider: prometheus.meterProvider }),
    }),
    spool: { directory: spoolDir },
    ...(tokenFile !== undefined && { bearerTokenFile: tokenFile }),
    ...(maxBody !== undefined && { maxRequestBodyBytes: maxBody }),
    ...(maxValues !== undefined && { maxRequestValues: maxValues }),
    ...(prometheus && { managementPort, prometheus }),
    logger,
  });
  if (!tokenFile) {
    logger('warn', 'no bearer token configured: any client can write audit records', {});
  }
  if (stopSignal !== undefined) shutdown(started, stopSignal);
}

function isHttpUrl(text: string): boolean {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

main().catch((err: unknown) => {
  writeLine('error', 'the audit OTLP bridge failed to start', { error: errorText(err) });
  process.exit(1);
});
