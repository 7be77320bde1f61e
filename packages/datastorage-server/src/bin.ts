#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/*
 * kubernaut-datastorage: runs the reference DataStorage server.
 *
 *   kubernaut-datastorage [--port 8080] [--host 127.0.0.1]
 *                         [--database-url postgres://... | --pglite-dir DIR]
 *                         [--openapi PATH] [--redis-url redis://...] [--redis-stream KEY]
 *                         [--log-level debug|info|warn|error]
 *
 * Each flag has an environment variable (the flag wins): PORT, HOST, DATABASE_URL,
 * PGLITE_DIR, KUBERNAUT_DATASTORAGE_SPEC, REDIS_URL, REDIS_STREAM, LOG_LEVEL. Without a
 * database URL the server runs on embedded PGlite (in memory unless a directory is given).
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, close the database, exit 0.
 */
import { parseArgs } from 'node:util';
import { describeRule, errorText, parseNumber } from '@kubernaut/datastorage-contract/config';
import { createJsonLogger, type LogLevel } from './logger.ts';
import { type DataStorageServerOptions, startDataStorageServer } from './server.ts';

const USAGE = `usage: kubernaut-datastorage [--port N] [--host ADDR]
       [--database-url postgres://... | --pglite-dir DIR] [--openapi PATH]
       [--redis-url redis://...] [--redis-stream KEY] [--log-level debug|info|warn|error]`;

const LEVELS = new Set(['debug', 'info', 'warn', 'error', 'silent']);
const PORT = { integer: true, min: 0, max: 65535 };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'database-url': { type: 'string' },
      'pglite-dir': { type: 'string' },
      openapi: { type: 'string' },
      'redis-url': { type: 'string' },
      'redis-stream': { type: 'string' },
      'log-level': { type: 'string' },
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
  const databaseUrl = values['database-url'] ?? env.DATABASE_URL;
  const pgliteDir = values['pglite-dir'] ?? env.PGLITE_DIR;
  if (values['database-url'] && values['pglite-dir']) {
    throw new Error('give either --database-url or --pglite-dir, not both');
  }
  const redisUrl = values['redis-url'] ?? env.REDIS_URL;
  const redisStream = values['redis-stream'] ?? env.REDIS_STREAM;
  const spec = values.openapi ?? env.KUBERNAUT_DATASTORAGE_SPEC;

  const options: DataStorageServerOptions = {
    port,
    host: values.host ?? env.HOST ?? '127.0.0.1',
    storage: databaseUrl
      ? { kind: 'postgres', connectionString: databaseUrl }
      : { kind: 'pglite', ...(pgliteDir ? { dataDir: pgliteDir } : {}) },
    logger,
    ...(spec ? { openapiSpec: spec } : {}),
    ...(redisUrl
      ? { redis: { url: redisUrl, ...(redisStream ? { stream: redisStream } : {}) } }
      : {}),
  };
  const server = await startDataStorageServer(options);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn('second signal: exiting at once', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('shutting down', { signal });
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
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
