// SPDX-License-Identifier: Apache-2.0
/*
 * The logging adapters with the real libraries (pino, winston, bunyan), the bridge of the
 * @opentelemetry/api-logs global (the real package), and the cross-check that tells the user when
 * a library's audit lines do not reach a processor.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { captureDiag, cleanupTempDirs, tempDir } from '@kubernaut/test-kit';
import { logs } from '@opentelemetry/api';
import { logs as apiLogs } from '@opentelemetry/api-logs';
import { LoggerProvider, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import bunyan from 'bunyan';
import pino from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import { AuditLogRecordProcessor } from '../../src/index.ts';
import { API_LOGS_GLOBAL, installApiLogsBridge } from '../../src/logging/api-logs-bridge.ts';
import {
  excludeAuditFormat,
  excludeAuditLines,
  excludeAuditStream,
} from '../../src/logging/index.ts';
import {
  checkAuditLines,
  noteAuditRecordReceived,
  noteProcessor,
  resetAuditLineSightings,
} from '../../src/logging/sightings.ts';
import { ComponentDiag } from '../../src/measure/diag.ts';

const AUDIT = { 'audit.event.category': 'gateway', 'audit.event.action': 'received' };

function lineSink() {
  const lines: string[] = [];
  return { lines, write: (l: string) => lines.push(l) };
}

beforeEach(() => resetAuditLineSightings());

afterAll(() => cleanupTempDirs());

describe('pino: excludeAuditLines', () => {
  it('drops the audit lines, writes the others, and forwards the rest of the destination', () => {
    const sink = lineSink();
    let flushed = 0;
    const destination = {
      ...sink,
      flush: (cb?: () => void) => {
        flushed++;
        cb?.();
      },
    };
    const logger = pino({ base: null, timestamp: false }, excludeAuditLines(destination));
    logger.info({ route: '/healthz' }, 'ordinary');
    logger.info(AUDIT, 'an audit line');
    logger.info('after');
    logger.flush();
    expect(sink.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'ordinary',
      'after',
    ]);
    expect(flushed).toBe(1);
  });
});

describe('winston: excludeAuditFormat', () => {
  it('keeps audit records out of the transport it is on', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk).trim());
        done();
      },
    });
    const logger = winston.createLogger({
      transports: [
        new winston.transports.Stream({
          stream,
          format: winston.format.combine(excludeAuditFormat(), winston.format.json()),
        }),
      ],
    });
    logger.info('ordinary', { route: '/healthz' });
    logger.info('an audit line', AUDIT);
    logger.info('after');
    await new Promise<void>((resolve) => logger.end(resolve));
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual([
      'ordinary',
      'after',
    ]);
  });
});

describe('bunyan: excludeAuditStream', () => {
  it('writes the other records as JSON lines, circular references replaced', () => {
    const sink = lineSink();
    const logger = bunyan.createLogger({
      name: 'svc',
      streams: [{ type: 'raw', stream: excludeAuditStream(sink) }],
    });
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = loop;
    logger.info({ loop }, 'ordinary');
    logger.info(AUDIT, 'an audit line');
    expect(sink.lines).toHaveLength(1);
    const rec = JSON.parse(sink.lines[0] as string) as Record<string, unknown>;
    expect(rec).toMatchObject({ name: 'svc', msg: 'ordinary', loop: { a: 1, self: '[Circular]' } });
    expect(sink.lines[0]?.endsWith('\n')).toBe(true);
  });
});

describe('the audit lines cross-check', () => {
  afterEach(() => {
    resetAuditLineSightings();
  });

  it('warns once per library whose audit lines reached no processor, and only then', () => {
    const diagLines = captureDiag();
    try {
      const logger = pino({}, excludeAuditLines(lineSink()));
      logger.info(AUDIT, 'a');
      logger.info(AUDIT, 'b');
      expect(checkAuditLines()).toEqual([]); // no processor in the process: the Collector route
      noteProcessor(1);
      noteAuditRecordReceived('@opentelemetry/instrumentation-pino');
      expect(checkAuditLines()).toEqual(['pino']); // 2 logged, 1 arrived
      expect(checkAuditLines()).toEqual([]); // once
      expect(diagLines.messages).toHaveLength(1);
      expect(diagLines.messages[0]).toContain('pino logged 2 audit line(s)');
      expect(diagLines.messages[0]).toContain('only 1 reached an AuditLogRecordProcessor');
    } finally {
      diagLines.restore();
    }
  });

  it('records from a scope of its own count for every library: no false alarm', () => {
    noteProcessor(1);
    excludeAuditStream(lineSink()).write({ ...AUDIT });
    noteAuditRecordReceived('my-own-bunyan-bridge');
    expect(checkAuditLines()).toEqual([]);
  });
});

describe('the @opentelemetry/api-logs global', () => {
  afterEach(() => {
    apiLogs.disable();
    logs.disable();
    delete (globalThis as Record<symbol, unknown>)[API_LOGS_GLOBAL];
  });

  it('a processor bridges it: records emitted through @opentelemetry/api-logs reach the SDK', async () => {
    const seen: ReadableLogRecord[] = [];
    // Its dead letters (the record has no event data) go to the test's directory, not the OS tmpdir.
    const audit = new AuditLogRecordProcessor({
      spool: false,
      deadLetter: { path: join(tempDir(), 'dead-letter.jsonl') },
    });
    const provider = new LoggerProvider({
      processors: [
        audit,
        { onEmit: (r) => seen.push(r), forceFlush: async () => {}, shutdown: async () => {} },
      ],
    });
    // The order of a real application: the transport's logger exists before sdk.start().
    const early = apiLogs.getLogger('@opentelemetry/winston-transport');
    logs.setGlobalLoggerProvider(provider);
    early.emit({ body: 'signal received', attributes: { ...AUDIT, 'audit.correlation.id': 'c' } });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.instrumentationScope.name).toBe('@opentelemetry/winston-transport');
    expect(seen[0]?.attributes['audit.event.category']).toBe('gateway');
    await provider.shutdown();
  });

  it('a provider registered there first is left alone; a no-op one is reported', () => {
    const own = new LoggerProvider();
    apiLogs.setGlobalLoggerProvider(own);
    expect(installApiLogsBridge()).toBe('other');
    expect(apiLogs.getLoggerProvider()).toBe(own);
    apiLogs.disable();
    apiLogs.setGlobalLoggerProvider({
      getLogger: () =>
        new (class NoopLogger {
          emit() {}
        })(),
    } as never);
    const diagLines = captureDiag();
    try {
      expect(installApiLogsBridge(new ComponentDiag('AuditLogRecordProcessor'))).toBe('noop');
      expect(diagLines.messages.join('\n')).toContain('holds a no-op LoggerProvider');
    } finally {
      diagLines.restore();
    }
  });
});
