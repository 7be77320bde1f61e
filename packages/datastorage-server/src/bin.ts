#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/*
 * kubernaut-datastorage: runs the reference DataStorage server.
 *
 *   kubernaut-datastorage [--port 8080] [--host 127.0.0.1]
 *                         [--database-url postgres://... | --pglite-dir DIR | --pglite-cache DIR]
 *                         [--openapi PATH] [--redis-url redis://...] [--redis-stream KEY]
 *                         [--auth-token-file PATH | --auth-kubernetes ...] [--chain-key-file PATH]
 *                         [--management-port 8081]
 *                         [--log-level debug|info|warn|error]
 *
 * Each flag has an environment variable (the flag wins): PORT, HOST, DATABASE_URL,
 * PGLITE_DIR, PGLITE_CACHE_DIR, KUBERNAUT_DATASTORAGE_SPEC, REDIS_URL, REDIS_STREAM, LOG_LEVEL,
 * KUBERNAUT_DATASTORAGE_AUTH_TOKEN_FILE, KUBERNAUT_DATASTORAGE_AUTH_KUBERNETES, ...
 * Without a database URL the server runs on embedded PGlite (in memory unless a directory is
 * given). Without authentication it only listens on a loopback address, unless told
 * --allow-unauthenticated.
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, close the database, exit 0.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import {
  describeRule,
  envText,
  errorText,
  parseBoolean,
  parseNumber,
} from '@kubernaut/datastorage-contract/config';
import type { AuthOptions } from './auth.ts';
import { createJsonLogger, type LogLevel } from './logger.ts';
import {
  type DataStorageServer,
  type DataStorageServerOptions,
  startDataStorageServer,
} from './server.ts';

const USAGE = `usage: kubernaut-datastorage [--port N] [--host ADDR]
       [--database-url postgres://... | --pglite-dir DIR | --pglite-cache DIR] [--openapi PATH]
       [--redis-url redis://...] [--redis-stream KEY]
       [--auth-token-file PATH | --auth-kubernetes [--kubernetes-api-url URL]
        [--kubernetes-ca-file PATH] [--kubernetes-token-file PATH] [--auth-namespace NS]]
       [--allow-unauthenticated] [--chain-key-file PATH] [--management-port N (8081; 0: none)]
       [--log-level debug|info|warn|error]`;

/** Where a pod finds its service account. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A boolean environment variable: false when absent or blank; an invalid value stops the start. */
function envFlag(name: string): boolean {
  const raw = envText(process.env, name);
  if (raw === undefined) return false;
  const flag = parseBoolean(raw);
  if (flag === undefined) {
    throw new Error(`invalid ${name}=${JSON.stringify(raw)}: expected true or false`);
  }
  return flag;
}

const isLoopback = (host: string) =>
  host === 'localhost' ||
  (isIP(host) === 4 && host.startsWith('127.')) ||
  host === '::1' ||
  host === '[::1]';

/** Kubernetes auth settings: flags, else the in-cluster defaults of a pod. */
function kubernetesAuth(values: Record<string, string | boolean | undefined>): AuthOptions {
  const env = process.env;
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  let apiServerUrl = str('kubernetes-api-url') ?? env.KUBERNAUT_DATASTORAGE_KUBERNETES_API_URL;
  if (apiServerUrl === undefined) {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT_HTTPS ?? env.KUBERNETES_SERVICE_PORT ?? '443';
    if (!host) {
      throw new Error(
        '--auth-kubernetes needs --kubernetes-api-url outside a pod (KUBERNETES_SERVICE_HOST is not set)',
      );
    }
    apiServerUrl = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  const inPod = (file: string) => {
    const p = `${SERVICE_ACCOUNT_DIR}/${file}`;
    return existsSync(p) ? p : undefined;
  };
  const caFile =
    str('kubernetes-ca-file') ?? env.KUBERNAUT_DATASTORAGE_KUBERNETES_CA_FILE ?? inPod('ca.crt');
  const tokenFile =
    str('kubernetes-token-file') ??
    env.KUBERNAUT_DATASTORAGE_KUBERNETES_TOKEN_FILE ??
    inPod('token');
  const nsFile = inPod('namespace');
  const namespace =
    str('auth-namespace') ??
    env.POD_NAMESPACE ??
    (nsFile ? readFileSync(nsFile, 'utf8').trim() : undefined) ??
    'default';
  return {
    kubernetes: {
      apiServerUrl,
      namespace,
      ...(caFile ? { caFile } : {}),
      ...(tokenFile ? { tokenFile } : {}),
    },
  };
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error', 'silent']);
const PORT = { integer: true, min: 0, max: 65535 };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'database-url': { type: 'string' },
      'pglite-dir': { type: 'string' },
      'pglite-cache': { type: 'string' },
      openapi: { type: 'string' },
      'redis-url': { type: 'string' },
      'redis-stream': { type: 'string' },
      'log-level': { type: 'string' },
      'auth-token-file': { type: 'string' },
      'auth-kubernetes': { type: 'boolean' },
      'kubernetes-api-url': { type: 'string' },
      'kubernetes-ca-file': { type: 'string' },
      'kubernetes-token-file': { type: 'string' },
      'auth-namespace': { type: 'string' },
      'allow-unauthenticated': { type: 'boolean' },
      'chain-key-file': { type: 'string' },
      'management-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const env = process.env;
  const level = values['log-level'] ?? env.LOG_LEVEL ?? 'info';
  if (!LEVELS.has(level)) throw new Error(`invalid log level ${level}`);
  const logger = createJsonLogger({
    level: level as LogLevel,
    base: { component: 'kubernaut-datastorage' },
  });

  const portText = values.port ?? env.PORT ?? '8080';
  const port = parseNumber(portText, PORT);
  if (port === undefined)
    throw new Error(`invalid port ${portText}: expected ${describeRule(PORT)}`);
  const managementText =
    values['management-port'] ?? env.KUBERNAUT_DATASTORAGE_MANAGEMENT_PORT ?? '8081';
  const managementPort = parseNumber(managementText, PORT);
  if (managementPort === undefined) {
    throw new Error(`invalid management port ${managementText}: expected ${describeRule(PORT)}`);
  }
  const databaseUrl = values['database-url'] ?? env.DATABASE_URL;
  const pgliteDir = values['pglite-dir'] ?? env.PGLITE_DIR;
  if (values['database-url'] && values['pglite-dir']) {
    throw new Error('give either --database-url or --pglite-dir, not both');
  }
  // The cache serves in-memory PGlite only; the environment's is ignored elsewhere.
  const pgliteCache = values['pglite-cache'] ?? envText(env, 'PGLITE_CACHE_DIR');
  if (values['pglite-cache'] !== undefined && (values['database-url'] || values['pglite-dir'])) {
    throw new Error(
      '--pglite-cache is for PGlite in memory: not with --database-url or --pglite-dir',
    );
  }
  if (pgliteCache === '') throw new Error('--pglite-cache needs a directory');
  const redisUrl = values['redis-url'] ?? env.REDIS_URL;
  const redisStream = values['redis-stream'] ?? env.REDIS_STREAM;
  const spec = values.openapi ?? env.KUBERNAUT_DATASTORAGE_SPEC;
  const host = values.host ?? env.HOST ?? '127.0.0.1';

  const tokenFile = values['auth-token-file'] ?? env.KUBERNAUT_DATASTORAGE_AUTH_TOKEN_FILE;
  const k8s = values['auth-kubernetes'] ?? envFlag('KUBERNAUT_DATASTORAGE_AUTH_KUBERNETES');
  if (tokenFile && k8s) throw new Error('give either --auth-token-file or --auth-kubernetes');
  const auth: AuthOptions | undefined = tokenFile
    ? { tokenFile }
    : k8s
      ? kubernetesAuth(values)
      : undefined;
  const chainKeyFile = values['chain-key-file'] ?? env.KUBERNAUT_DATASTORAGE_CHAIN_KEY_FILE;
  const allowUnauthenticated =
    values['allow-unauthenticated'] ?? envFlag('KUBERNAUT_DATASTORAGE_ALLOW_UNAUTHENTICATED');
  if (!auth && !isLoopback(host) && !allowUnauthenticated) {
    throw new Error(
      `refusing to serve audit events without authentication on ${host}: give --auth-token-file or --auth-kubernetes (or --allow-unauthenticated)`,
    );
  }

  const options: DataStorageServerOptions = {
    port,
    host,
    storage: databaseUrl
      ? { kind: 'postgres', connectionString: databaseUrl }
      : {
          kind: 'pglite',
          ...(pgliteDir ? { dataDir: pgliteDir } : pgliteCache ? { cacheDir: pgliteCache } : {}),
        },
    logger,
    ...(spec ? { openapiSpec: spec } : {}),
    ...(auth ? { auth } : {}),
    ...(chainKeyFile ? { chainKeyFile } : {}),
    // As upstream: health and metrics on their own port, 8081 unless told otherwise; 0: none.
    ...(managementPort > 0 ? { managementPort } : {}),
    ...(redisUrl
      ? { redis: { url: redisUrl, ...(redisStream ? { stream: redisStream } : {}) } }
      : {}),
  };
  // The handlers are in place before the start: a signal that comes while the server starts,
  // or just after it said it listens, stops it gracefully once started (without a handler the
  // process would die of the signal, exit status 143).
  let server: DataStorageServer | undefined;
  let stopping = false;
  const close = (running: DataStorageServer) =>
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn('second signal: exiting at once', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('shutting down', { signal });
    if (server !== undefined) close(server);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  server = await startDataStorageServer(options);
  if (stopping) close(server);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `${JSON.stringify({
      time: new Date().toISOString(),
      level: 'error',
      msg: 'kubernaut-datastorage failed to start',
      component: 'kubernaut-datastorage',
      error: errorText(err),
    })}\n`,
  );
  process.exit(1);
});
