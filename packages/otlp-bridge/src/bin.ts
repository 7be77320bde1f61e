#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/*
 * kubernaut-audit-otlp-bridge: runs the audit OTLP bridge as a process.
 *
 *   kubernaut-audit-otlp-bridge --port 4318 --datastorage-url URL --spool-dir DIR \
 *     [--host 0.0.0.0] [--bearer-token-file F] [--max-body-bytes N]
 *
 * Environment equivalents: PORT, HOST, KUBERNAUT_AUDIT_ENDPOINT, KUBERNAUT_AUDIT_SPOOL_DIR,
 * KUBERNAUT_AUDIT_BRIDGE_TOKEN_FILE, KUBERNAUT_AUDIT_BRIDGE_MAX_BODY_BYTES. Flags win. The
 * exporter's own settings (DataStorage token, TLS, timeouts) come from its environment variables.
 * Logs are JSON lines on stderr. SIGTERM/SIGINT: stop accepting, finish the requests in flight,
 * shut the processor down (undelivered records stay in the spool for the next start).
 */
import { parseArgs } from 'node:util';
import { describeRule, errorText, parseNumber } from '@kubernaut/datastorage-contract/config';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api';
import { type BridgeLogger, startOtlpBridge } from './bridge.ts';

const USAGE = `usage: kubernaut-audit-otlp-bridge --datastorage-url URL --spool-dir DIR
  [--port 4318] [--host 0.0.0.0] [--bearer-token-file FILE] [--max-body-bytes N]
env: KUBERNAUT_AUDIT_ENDPOINT, KUBERNAUT_AUDIT_SPOOL_DIR, PORT, HOST,
     KUBERNAUT_AUDIT_BRIDGE_TOKEN_FILE, KUBERNAUT_AUDIT_BRIDGE_MAX_BODY_BYTES`;

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
  const datastorageUrl = str('datastorage-url', 'KUBERNAUT_AUDIT_ENDPOINT');
  if (!datastorageUrl) fail('missing --datastorage-url (or KUBERNAUT_AUDIT_ENDPOINT)');
  const spoolDir = str('spool-dir', 'KUBERNAUT_AUDIT_SPOOL_DIR');
  if (!spoolDir) fail('missing --spool-dir (or KUBERNAUT_AUDIT_SPOOL_DIR)');
  const tokenFile = str('bearer-token-file', 'KUBERNAUT_AUDIT_BRIDGE_TOKEN_FILE');
  const maxBodyText = str('max-body-bytes', 'KUBERNAUT_AUDIT_BRIDGE_MAX_BODY_BYTES');
  const maxBody = maxBodyText === undefined ? undefined : parseNumber(maxBodyText, BYTES);
  if (maxBodyText !== undefined && maxBody === undefined) {
    fail(`invalid max body bytes ${maxBodyText}: expected ${describeRule(BYTES)}`);
  }

  diag.setLogger(diagLogger, { logLevel: DiagLogLevel.INFO, suppressOverrideMessage: true });

  const bridge = await startOtlpBridge({
    host: str('host', 'HOST') ?? '0.0.0.0',
    port,
    exporter: new KubernautAuditExporter({ url: datastorageUrl }),
    spool: { directory: spoolDir },
    ...(tokenFile !== undefined && { bearerTokenFile: tokenFile }),
    ...(maxBody !== undefined && { maxRequestBodyBytes: maxBody }),
    logger,
  });
  if (!tokenFile) {
    logger('warn', 'no bearer token configured: any client can write audit records', {});
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger('info', 'shutting down', { signal });
    bridge.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger('error', 'shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  writeLine('error', 'the audit OTLP bridge failed to start', { error: errorText(err) });
  process.exit(1);
});
