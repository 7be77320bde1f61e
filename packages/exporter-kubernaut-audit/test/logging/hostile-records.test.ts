// SPDX-License-Identifier: Apache-2.0
/*
 * The logging adapters under records a hostile or careless application logs: values JSON cannot
 * serialize, accessors that throw, Proxies, audit fields of the wrong type. The application is
 * never thrown into, an ordinary line is never lost, and a line is kept out of the ordinary
 * output only when AuditLogRecordProcessor will take it as an audit record.
 */
import { Writable } from 'node:stream';
import { LoggerProvider, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import bunyan from 'bunyan';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import {
  excludeAuditFormat,
  excludeAuditLines,
  excludeAuditStream,
} from '../../src/logging/index.ts';
import {
  checkAuditLines,
  noteProcessor,
  resetAuditLineSightings,
} from '../../src/logging/sightings.ts';
import { isAuditRecord } from '../../src/select/index.ts';

const CATEGORY = 'audit.event.category';

function lineSink() {
  const lines: string[] = [];
  return { lines, write: (l: string) => lines.push(l) };
}

/** An object whose every property read (and key listing) throws. */
function hostileProxy(): object {
  return new Proxy(
    {},
    {
      get() {
        throw new Error('get trap');
      },
      ownKeys() {
        throw new Error('ownKeys trap');
      },
    },
  );
}

function deeplyNested(depth: number): object {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 0; i < depth; i++) {
    const next: Record<string, unknown> = {};
    node.a = next;
    node = next;
  }
  return root;
}

beforeEach(() => resetAuditLineSightings());

describe('bunyan: excludeAuditStream never throws into the application', () => {
  const cases: Array<[string, () => object]> = [
    ['a BigInt', () => ({ n: 10n })],
    [
      'a toJSON that throws',
      () => ({
        o: {
          toJSON() {
            throw new Error('toJSON');
          },
        },
      }),
    ],
    [
      'a getter that throws',
      () => ({
        o: {
          get x() {
            throw new Error('getter');
          },
        },
      }),
    ],
    ['a Proxy whose traps throw', () => ({ o: hostileProxy() })],
    ['100,000 levels of nesting', () => ({ deep: deeplyNested(100_000) })],
  ];
  for (const [what, fields] of cases) {
    it(`writes one JSON line for a record holding ${what}`, () => {
      const sink = lineSink();
      const logger = bunyan.createLogger({
        name: 'svc',
        streams: [{ type: 'raw', stream: excludeAuditStream(sink) }],
      });
      expect(() => logger.info(fields(), 'the message')).not.toThrow();
      expect(sink.lines).toHaveLength(1);
      const line = sink.lines[0] as string;
      expect(line.endsWith('\n')).toBe(true);
      expect(JSON.parse(line)).toMatchObject({ name: 'svc', msg: 'the message', level: 30 });
    });
  }

  it('writes a BigInt as its decimal digits, and says why a record could not be written whole', () => {
    const sink = lineSink();
    const stream = excludeAuditStream(sink);
    stream.write({ msg: 'n', n: 12345678901234567890n });
    stream.write({
      msg: 'bad',
      o: {
        toJSON() {
          throw new Error('toJSON failed');
        },
      },
    });
    expect(JSON.parse(sink.lines[0] as string)).toEqual({ msg: 'n', n: '12345678901234567890' });
    expect(JSON.parse(sink.lines[1] as string)).toEqual({
      msg: 'bad',
      serialization_error: 'toJSON failed',
    });
  });

  it('a record that is itself a hostile Proxy is written as a line that says so', () => {
    const sink = lineSink();
    expect(() => excludeAuditStream(sink).write(hostileProxy())).not.toThrow();
    expect(sink.lines).toHaveLength(1);
    expect(JSON.parse(sink.lines[0] as string)).toHaveProperty('serialization_error');
  });
});

describe('winston: excludeAuditFormat never throws into the application', () => {
  it('passes a record whose audit field cannot be read on to the next format', () => {
    const info = hostileProxy();
    expect(excludeAuditFormat().transform(info)).toBe(info);
  });
});

describe('audit fields of the wrong type: excluded only when the processor takes the record', () => {
  // The processor selects a record by `audit.event.category` (any value but null/undefined,
  // ../../src/select/select.ts); a value no bridge can carry (a Symbol, a function: JSON drops
  // it, the SDK refuses it) never reaches the processor either. Such a line is an ordinary line:
  // excluding it from the ordinary output too would lose it silently.
  const notAudit: Array<[string, unknown]> = [
    ['null', null],
    ['a Symbol', Symbol('gateway')],
    ['a function', () => 'gateway'],
  ];
  for (const [what, value] of notAudit) {
    it(`a category that is ${what} stays in the ordinary output (pino, winston, bunyan)`, async () => {
      const fields = { [CATEGORY]: value, route: '/x' };

      const pinoSink = lineSink();
      pino({ base: null }, excludeAuditLines(pinoSink)).info(fields, 'pino line');
      expect(pinoSink.lines).toHaveLength(1);

      expect(excludeAuditFormat().transform({ level: 'info', message: 'w', ...fields })).not.toBe(
        false,
      );

      const bunyanSink = lineSink();
      excludeAuditStream(bunyanSink).write({ msg: 'b', ...fields });
      expect(bunyanSink.lines).toHaveLength(1);
    });
  }

  it('the null case agrees with the processor: it does not take such a record either', () => {
    expect(isAuditRecord({ attributes: { [CATEGORY]: null } })).toBe(false);
  });

  it('a category of a wrong but deliverable type (a number, an object) is still an audit line', () => {
    // The processor takes it and dead-letters it as invalid: it is counted, not lost.
    for (const value of [42, { a: 1 }, '', false]) {
      const sink = lineSink();
      pino({ base: null }, excludeAuditLines(sink)).info({ [CATEGORY]: value }, 'audit');
      expect(sink.lines).toHaveLength(0);
      expect(isAuditRecord({ attributes: { [CATEGORY]: value } })).toBe(true);
    }
  });
});

describe('winston and bunyan: a category is audit exactly when the OpenTelemetry SDK keeps it', () => {
  // Their bridges (@opentelemetry/winston-transport, OpenTelemetryBunyanStream) hand the fields
  // to the Logs API as they are; the SDK drops an attribute that is not an OTel AnyValue, so a
  // category of such a value never reaches the processor: the line must stay in the ordinary
  // output, and the cross-check must not count it.
  /** What the processor sees of a record emitted with `attributes` through the real SDK. */
  function throughSdk(attributes: Record<string, unknown>): ReadableLogRecord {
    const seen: ReadableLogRecord[] = [];
    const provider = new LoggerProvider({
      processors: [
        { onEmit: (r) => seen.push(r), forceFlush: async () => {}, shutdown: async () => {} },
      ],
    });
    provider.getLogger('bridge').emit({ body: 'm', attributes: attributes as never });
    return seen[0] as ReadableLogRecord;
  }

  async function ordinaryLines(value: unknown): Promise<{ winston: number; bunyan: number }> {
    const winstonLines: string[] = [];
    const logger = winston.createLogger({
      transports: [
        new winston.transports.Stream({
          stream: new Writable({
            write(chunk, _enc, done) {
              winstonLines.push(String(chunk));
              done();
            },
          }),
          format: winston.format.combine(excludeAuditFormat(), winston.format.json()),
        }),
      ],
    });
    logger.info('w', { [CATEGORY]: value });
    await new Promise<void>((resolve) => logger.end(resolve));
    const bunyanSink = lineSink();
    bunyan
      .createLogger({
        name: 'svc',
        streams: [{ type: 'raw', stream: excludeAuditStream(bunyanSink) }],
      })
      .info({ [CATEGORY]: value }, 'b');
    return { winston: winstonLines.length, bunyan: bunyanSink.lines.length };
  }

  const dropped: Array<[string, () => unknown]> = [
    ['a BigInt', () => 10n],
    ['a Date', () => new Date(0)],
    ['an invalid Date', () => new Date(Number.NaN)],
    ['a Map', () => new Map([['a', 1]])],
    [
      'a class instance',
      () =>
        new (class Category {
          name = 'gateway';
        })(),
    ],
    ['a map holding a BigInt', () => ({ a: 1n })],
    ['an array holding a Date', () => [new Date(0)]],
  ];
  for (const [what, value] of dropped) {
    it(`a category that is ${what}: dropped by the SDK, so an ordinary line, not counted`, async () => {
      expect(isAuditRecord(throughSdk({ [CATEGORY]: value(), route: '/x' }))).toBe(false);
      noteProcessor(1);
      expect(await ordinaryLines(value())).toEqual({ winston: 1, bunyan: 1 });
      expect(checkAuditLines()).toEqual([]);
    });
  }

  it('a category the fields only inherit (or hold as a non-enumerable property) is not an attribute: an ordinary line', () => {
    const inherited = Object.create({ [CATEGORY]: 'gateway' }) as Record<string, unknown>;
    inherited.route = '/x';
    const hidden = Object.defineProperty({ route: '/x' }, CATEGORY, {
      value: 'gateway',
      enumerable: false,
    });
    for (const fields of [inherited, hidden]) {
      expect(isAuditRecord(throughSdk(fields))).toBe(false);
      expect(excludeAuditFormat().transform(fields)).toBe(fields);
      const sink = lineSink();
      excludeAuditStream(sink).write(fields);
      expect(sink.lines).toHaveLength(1);
    }
  });

  const kept: Array<[string, () => unknown]> = [
    ['a string', () => 'gateway'],
    ['a number', () => 42],
    ['a plain map', () => ({ a: 1 })],
    ['an array', () => ['gateway', 1]],
    ['a Uint8Array', () => new Uint8Array([1])],
  ];
  for (const [what, value] of kept) {
    it(`a category that is ${what}: kept by the SDK, so an audit line`, async () => {
      expect(isAuditRecord(throughSdk({ [CATEGORY]: value() }))).toBe(true);
      expect(await ordinaryLines(value())).toEqual({ winston: 0, bunyan: 0 });
    });
  }
});

describe('winston end to end with hostile metadata', () => {
  it('an ordinary line with a null category reaches the transport', async () => {
    const lines: string[] = [];
    const logger = winston.createLogger({
      transports: [
        new winston.transports.Stream({
          stream: new Writable({
            write(chunk, _enc, done) {
              lines.push(String(chunk));
              done();
            },
          }),
          format: winston.format.combine(excludeAuditFormat(), winston.format.json()),
        }),
      ],
    });
    logger.info('kept', { [CATEGORY]: null });
    await new Promise<void>((resolve) => logger.end(resolve));
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['kept']);
  });
});

describe('pino: audit fields bound to a child logger', () => {
  it("a child logger's audit bindings keep its lines out; a nested or quoted key does not", () => {
    const sink = lineSink();
    const logger = pino({ base: null }, excludeAuditLines(sink));
    const audit = logger.child({ [CATEGORY]: 'gateway', 'audit.event.action': 'received' });
    audit.info({ 'audit.correlation.id': 'c-1' }, 'an audit line from a child');
    audit.info('and another');
    logger.info({ nested: { [CATEGORY]: 'gateway' } }, 'nested: not an audit record');
    logger.info(`quoted: "${CATEGORY}": in a message`);
    logger.child({ other: 1 }).info('an ordinary child');
    expect(sink.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'nested: not an audit record',
      `quoted: "${CATEGORY}": in a message`,
      'an ordinary child',
    ]);
  });
});
