// SPDX-License-Identifier: Apache-2.0
/*
 * Configuration and API misuse the way users get it wrong, against the real SDK and a real
 * loopback DataStorage. The rule followed is OpenTelemetry JS's for the BatchLogRecordProcessor
 * and its environment variables: an invalid value is a diag warning that names the setting and
 * the value used instead; nothing throws into application code, nothing hangs. Where OTel's OTLP
 * exporters throw (an unparsable URL, timeoutMillis <= 0) this package keeps its documented
 * rule (README "Options": the exporter constructs, logs an error, exports fail clearly).
 */
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { captureDiag, type DiagCapture, FaultServer, tempDir } from '@kubernaut/test-kit';
import { ExportResultCode } from '@opentelemetry/core';
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type ReadableLogRecord,
} from '@opentelemetry/sdk-logs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveExporterConfig } from '../../src/config/exporter-env.ts';
import { defaultSpoolDirectory, readProcessorEnv } from '../../src/config/processor-env.ts';
import { resolveProcessorConfig } from '../../src/config/processor-options.ts';
import { defaultDeadLetterPath } from '../../src/spool/dead-letter.ts';
import {
  deliveredIds,
  faultServerForFile,
  processorFor,
  threadedProcessorFor,
} from '../processor/fixtures/harness.ts';
import { auditRecord } from '../processor/fixtures/support.ts';

/** The longest delay Node's timers take; a longer one fires after 1 ms. */
const MAX_TIMER = 2_147_483_647;
const FAST_RETRY = { initialDelayMillis: 5, maxDelayMillis: 50, multiplier: 2, jitter: 0.2 };

const ds = await faultServerForFile();

let log: DiagCapture;
beforeEach(() => {
  log = captureDiag();
});
afterEach(() => {
  log.restore();
  expect(ds.specViolations).toEqual([]);
});

const warned = (re: RegExp) => log.messages.filter((m) => re.test(m));

/** Audit log records as a provider hands them to an exporter. */
async function readableRecords(ids: string[]): Promise<ReadableLogRecord[]> {
  const { InMemoryLogRecordExporter, SimpleLogRecordProcessor } = await import(
    '@opentelemetry/sdk-logs'
  );
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    processors: [new SimpleLogRecordProcessor({ exporter: memory })],
  });
  for (const id of ids) provider.getLogger('t').emit(auditRecord(id, id.split(':')[0] as string));
  const records = [...memory.getFinishedLogRecords()];
  await provider.shutdown();
  return records;
}

function exportOnce(exporter: KubernautAuditExporter, records: ReadableLogRecord[]) {
  return new Promise<{ code: ExportResultCode; error?: Error }>((done) =>
    exporter.export(records, done),
  );
}

/**
 * Constructs a processor from `options` (as JavaScript may pass them) with
 * KUBERNAUT_AUDIT_SPOOL_DIR set to a temp directory: it must not throw and must get a file
 * spool. Shuts it down and restores the environment.
 */
async function constructedWithEnvSpool(options: unknown): Promise<void> {
  const saved = process.env.KUBERNAUT_AUDIT_SPOOL_DIR;
  process.env.KUBERNAUT_AUDIT_SPOOL_DIR = tempDir();
  try {
    let processor: AuditLogRecordProcessor | undefined;
    expect(() => {
      processor = new AuditLogRecordProcessor(options as never);
    }).not.toThrow();
    expect(processor?.spoolKind).toBe('file');
    await processor?.shutdown();
  } finally {
    if (saved === undefined) delete process.env.KUBERNAUT_AUDIT_SPOOL_DIR;
    else process.env.KUBERNAUT_AUDIT_SPOOL_DIR = saved;
  }
}

describe('code options of the wrong type (OTel JS rule: diag warning, the default is used)', () => {
  it('a non-string url, bearerToken, bearerTokenFile or openapiSpec does not throw from the constructor', () => {
    const env = { KUBERNAUT_AUDIT_ENDPOINT: 'http://from-env:8080' };
    const bad = { url: 8080, bearerToken: 42, bearerTokenFile: ['/t'], openapiSpec: {} };
    const cfg = resolveExporterConfig(bad as never, env);
    expect(cfg).toMatchObject({
      url: 'http://from-env:8080',
      bearerToken: undefined,
      bearerTokenFile: undefined,
      openapiSpec: undefined,
    });
    for (const name of Object.keys(bad)) {
      expect(warned(new RegExp(`invalid ${name} \\(.*\\): expected a string`))).toHaveLength(1);
    }
    expect(
      () => new KubernautAuditExporter({ url: ds.url, bearerToken: 42 } as never),
    ).not.toThrow();
    // `null` options (a configuration object that was not loaded) are no options.
    expect(() => new KubernautAuditExporter(null as never)).not.toThrow();
  });

  it('spool.directory that is not a string, or is blank, means "not set": the environment or the default', () => {
    const env = { KUBERNAUT_AUDIT_SPOOL_DIR: '/var/spool/audit' };
    for (const directory of [123, '', '   ', null]) {
      const cfg = resolveProcessorConfig({ spool: { directory } } as never, env);
      expect(cfg.spool?.directory).toBe('/var/spool/audit');
    }
    expect(warned(/invalid spool\.directory \(a number\): expected a string/)).toHaveLength(1);
    // Through the constructor, with the environment's directory: a file spool, no TypeError.
    return constructedWithEnvSpool({
      exporter: new KubernautAuditExporter({ url: ds.url }),
      spool: { directory: 123 },
    });
  });

  it("a signingKeyFile that is not a string is reported; the environment's key file is used", () => {
    const env = { KUBERNAUT_AUDIT_SIGNING_KEY_FILE: '/keys/audit.pem' };
    expect(resolveProcessorConfig({ signingKeyFile: 5 } as never, env).signingKeyFile).toBe(
      '/keys/audit.pem',
    );
    expect(warned(/invalid signingKeyFile \(a number\).*using \/keys\/audit\.pem/)).toHaveLength(1);
  });

  it('a spool or deadLetter given as a path string instead of an object is reported, not silently ignored', () => {
    const cfg = resolveProcessorConfig(
      { spool: '/var/lib/audit', deadLetter: '/var/lib/dl.jsonl' } as never,
      {},
    );
    expect(cfg.spool?.directory).toBeUndefined();
    expect(
      warned(/invalid spool \("\/var\/lib\/audit"\): expected false or \{ directory/),
    ).toHaveLength(1);
    expect(warned(/invalid deadLetter \("\/var\/lib\/dl\.jsonl"\): expected \{ path/)).toHaveLength(
      1,
    );
  });
});

describe('headers and tokens an HTTP request cannot carry (OTLP exporters: warn and drop the header)', () => {
  it('invalid header names and values are dropped at construction with a warning; the rest are sent', async () => {
    const exporter = new KubernautAuditExporter({
      url: ds.url,
      retry: FAST_RETRY,
      timeoutMillis: 2000,
      headers: {
        'x-tenant': 'acme',
        'x-port': 8080,
        'x bad name': 'v',
        'x-multi-line': 'secret-value\r\nx-injected: 1',
        'x-absent': undefined,
      } as never,
    });
    const before = ds.received().length;
    const r = await exportOnce(exporter, await readableRecords(['hdr-0:0']));
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    expect(deliveredIds(ds).slice(before)).toEqual(['hdr-0:0']);
    expect(warned(/header "x bad name".*ignored/)).toHaveLength(1);
    expect(warned(/header "x-multi-line".*ignored/)).toHaveLength(1);
    expect(warned(/header "x-absent".*ignored/)).toHaveLength(1);
    expect(log.messages.join('\n')).not.toContain('secret-value');
    expect(resolveExporterConfig({ headers: { 'x-port': 8080 } } as never, {}).headers).toEqual({
      'x-port': '8080',
    });
    await exporter.shutdown();
  });

  it('a bearerToken with a line break is an error at construction that never shows the token', () => {
    const cfg = resolveExporterConfig({ bearerToken: 'tok-abc\nX-Evil: 1' }, {});
    expect(cfg.bearerToken).toBeUndefined();
    const errors = warned(/bearerToken .*cannot carry/);
    expect(errors).toHaveLength(1);
    expect(log.messages.join('\n')).not.toContain('tok-abc');
  });
});

describe('the DataStorage URL', () => {
  it('without a scheme: the error names the value and the fix; credentials in it are never shown', async () => {
    const exporter = new KubernautAuditExporter({ url: 'datastorage:8080' });
    expect(warned(/"datastorage:8080" is not an http\(s\) URL.*http:\/\//)).toHaveLength(1);
    const r = await exportOnce(exporter, await readableRecords(['url-0:0']));
    expect(r.code).toBe(ExportResultCode.FAILED);
    expect(r.error?.message).toMatch(/"datastorage:8080" is not an http\(s\) URL/);
    const withSecret = new KubernautAuditExporter({ url: 'http://user:s3cr3t@ds:99999' });
    expect(log.messages.join('\n')).not.toContain('s3cr3t');
    expect(warned(/"http:\/\/user:\*\*\*@ds:99999" is not an http\(s\) URL/)).toHaveLength(1);
    await exporter.shutdown();
    await withSecret.shutdown();
  });

  it('a query string or fragment, which the batch URL cannot keep, is a warning', async () => {
    const exporter = new KubernautAuditExporter({ url: `${ds.url}/?tenant=acme#x` });
    expect(warned(/query string and fragment of the DataStorage URL are ignored/)).toHaveLength(1);
    await exporter.shutdown();
  });
});

describe("timer values past what Node's timers can wait (2^31-1 ms fire after 1 ms)", () => {
  it('are capped at 2147483647 ms with a warning that names the option', () => {
    const e = resolveExporterConfig(
      { timeoutMillis: 1e10, retry: { initialDelayMillis: 1e12, maxDelayMillis: 1e12 } },
      {},
    );
    expect(e.timeoutMillis).toBe(MAX_TIMER);
    expect(e.retry).toMatchObject({ initialDelayMillis: MAX_TIMER, maxDelayMillis: MAX_TIMER });
    const p = resolveProcessorConfig(
      { scheduledDelayMillis: 1e10, exportTimeoutMillis: 1e10, shutdownTimeoutMillis: 1e10 },
      {},
    );
    expect(p).toMatchObject({
      scheduledDelayMillis: MAX_TIMER,
      exportTimeoutMillis: MAX_TIMER,
      shutdownTimeoutMillis: MAX_TIMER,
    });
    for (const name of [
      'timeoutMillis',
      'retry.initialDelayMillis',
      'retry.maxDelayMillis',
      'scheduledDelayMillis',
      'exportTimeoutMillis',
      'shutdownTimeoutMillis',
    ]) {
      expect(
        warned(new RegExp(`^\\S+ ${name.replace('.', '\\.')} .*using 2147483647`)),
      ).toHaveLength(1);
    }
  });

  it('garbage in OTEL_BLRP_* / KUBERNAUT_AUDIT_SPOOL_*: the warning names the variable and the default used', () => {
    const cfg = readProcessorEnv({
      OTEL_BLRP_MAX_QUEUE_SIZE: '5s',
      OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '0x200',
      OTEL_BLRP_SCHEDULE_DELAY: '-1',
      OTEL_BLRP_EXPORT_TIMEOUT: '1e309',
      KUBERNAUT_AUDIT_SPOOL_MAX_BYTES: '1 GiB',
      KUBERNAUT_AUDIT_SPOOL_DURABILITY: 'fsync',
    });
    expect(cfg).toEqual({});
    for (const [name, def] of [
      ['OTEL_BLRP_MAX_QUEUE_SIZE', '2048'],
      ['OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', '512'],
      ['OTEL_BLRP_SCHEDULE_DELAY', '1000'],
      ['OTEL_BLRP_EXPORT_TIMEOUT', '30000'],
      ['KUBERNAUT_AUDIT_SPOOL_MAX_BYTES', '2147483648'],
      ['KUBERNAUT_AUDIT_SPOOL_DURABILITY', 'batch'],
    ]) {
      expect(
        warned(new RegExp(`ignoring ${name}=.*; using the default \\(${def}\\)$`)),
      ).toHaveLength(1);
    }
  });

  it('OTEL_BLRP_* durations over the timer limit: a warning naming the variable, then the cap', () => {
    const cfg = readProcessorEnv({
      OTEL_BLRP_SCHEDULE_DELAY: '99999999999',
      OTEL_BLRP_EXPORT_TIMEOUT: '1e12',
    });
    expect(cfg).toMatchObject({ scheduledDelayMillis: MAX_TIMER, exportTimeoutMillis: MAX_TIMER });
    expect(warned(/OTEL_BLRP_SCHEDULE_DELAY="99999999999".*using 2147483647/)).toHaveLength(1);
    expect(warned(/OTEL_BLRP_EXPORT_TIMEOUT="1e12".*using 2147483647/)).toHaveLength(1);
  });

  it('timeoutMillis: 1e10 does not time every attempt out after 1 ms (no resend, no duplicate)', async () => {
    const exporter = new KubernautAuditExporter({
      url: ds.url,
      timeoutMillis: 1e10,
      retry: FAST_RETRY,
    });
    ds.inject({ type: 'slow', delayMillis: 100, commit: true });
    const before = ds.requests.length;
    const r = await exportOnce(exporter, await readableRecords(['big-timeout-0:0']));
    expect(r.code).toBe(ExportResultCode.SUCCESS);
    expect(ds.requests.length - before).toBe(1);
    expect(ds.duplicates()).toBe(0);
    await exporter.shutdown();
  });

  it('retry.initialDelayMillis: 1e10 during an outage does not hammer DataStorage every 1 ms', async () => {
    const down = await FaultServer.start();
    down.inject({ type: 'unavailable' }, 100_000);
    const processor = new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({
        url: down.url,
        retry: { initialDelayMillis: 1e10 },
      }),
      spool: { directory: tempDir() },
      shutdownTimeoutMillis: 0,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    provider.getLogger('t').emit(auditRecord('hammer-0:0', 'hammer-0'));
    await expect(processor.forceFlush({ timeoutMillis: 300 })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(down.requests.length).toBeLessThanOrEqual(2);
    await provider.shutdown();
    await down.close();
  });

  it('shutdownTimeoutMillis: 1e10 keeps delivering instead of giving up after 1 ms', async () => {
    const processor = processorFor(ds, { shutdownTimeoutMillis: 1e10 });
    const provider = new LoggerProvider({ processors: [processor] });
    const before = ds.received().length;
    ds.inject({ type: 'slow', delayMillis: 100, commit: true });
    provider.getLogger('t').emit(auditRecord('long-shutdown-0:0', 'long-shutdown-0'));
    await provider.shutdown();
    expect(deliveredIds(ds).slice(before)).toEqual(['long-shutdown-0:0']);
    expect(warned(/undelivered/)).toEqual([]);
  });
});

describe('forceFlush({ timeoutMillis }) misuse', () => {
  for (const timeoutMillis of [Number.POSITIVE_INFINITY, 1e10, Number.NaN, -1]) {
    it(`timeoutMillis ${String(timeoutMillis)} waits for delivery instead of rejecting after 1 ms`, async () => {
      const processor = processorFor(ds);
      const provider = new LoggerProvider({ processors: [processor] });
      const before = ds.received().length;
      ds.inject({ type: 'slow', delayMillis: 100, commit: true });
      const id = `flush-${String(timeoutMillis)}-0:0`;
      provider.getLogger('t').emit(auditRecord(id, `flush-${String(timeoutMillis)}-0`));
      await processor.forceFlush({ timeoutMillis } as never);
      expect(deliveredIds(ds).slice(before)).toEqual([id]);
      await provider.shutdown();
    });
  }

  it('timeoutMillis 0 does not wait: it rejects at once unless everything is settled', async () => {
    const processor = processorFor(ds);
    const provider = new LoggerProvider({ processors: [processor] });
    await expect(processor.forceFlush({ timeoutMillis: 0 })).resolves.toBeUndefined();
    ds.inject({ type: 'slow', delayMillis: 200, commit: true });
    provider.getLogger('t').emit(auditRecord('flush-zero-0:0', 'flush-zero-0'));
    await expect(processor.forceFlush({ timeoutMillis: 0 })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    await processor.forceFlush();
    await provider.shutdown();
  });
});

describe('one exporter, several owners', () => {
  it('an exporter shut down by another processor while the audit processor still uses it: the error says so', async () => {
    const exporter = new KubernautAuditExporter({ url: ds.url, retry: FAST_RETRY });
    // The same exporter also behind an SDK batch processor, whose provider shuts it down.
    const other = new LoggerProvider({ processors: [new BatchLogRecordProcessor({ exporter })] });
    const audit = new AuditLogRecordProcessor({
      exporter,
      spool: { directory: tempDir() },
      shutdownTimeoutMillis: 0,
    });
    const provider = new LoggerProvider({ processors: [audit] });
    await other.shutdown();
    provider.getLogger('t').emit(auditRecord('shared-0:0', 'shared-0'));
    await expect(audit.forceFlush({ timeoutMillis: 300 })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(warned(/exporter has been shut down.*records stay in the spool/).length).toBeGreaterThan(
      0,
    );
    await provider.shutdown();
  });
});

describe('processor construction from JavaScript', () => {
  it('null options are no options (the exporter already takes null)', async () => {
    // The environment's spool directory: the default one under the OS tmpdir is not the test's.
    await constructedWithEnvSpool(null);
  });

  it('an exporter that is not a KubernautAuditExporter is named in the error (not blamed on a dual package)', async () => {
    const otlpLike = new (class OTLPLogExporter {
      export() {}
      async shutdown() {}
    })();
    for (const [exporter, named] of [
      [otlpLike, /exporter option is an instance of OTLPLogExporter, not a KubernautAuditExporter/],
      [{ export() {} }, /exporter option is a plain object, not a KubernautAuditExporter/],
    ] as const) {
      const processor = new AuditLogRecordProcessor({
        exporter: exporter as unknown as KubernautAuditExporter,
        spool: false,
        shutdownTimeoutMillis: 0,
      });
      expect(warned(named)).toHaveLength(1);
      expect(warned(/ESM and a CommonJS copy/)).toEqual([]);
      await processor.shutdown();
    }
  });
});

describe('processor option relationships and paths', () => {
  it("maxExportBatchSize > maxQueueSize: clamped with a warning, as OTel's BatchLogRecordProcessor does", () => {
    const cfg = resolveProcessorConfig({ maxQueueSize: 100, maxExportBatchSize: 512 }, {});
    expect(cfg.maxExportBatchSize).toBe(100);
    expect(warned(/maxExportBatchSize must be smaller or equal to maxQueueSize/)).toHaveLength(1);
    const fromEnv = resolveProcessorConfig(
      {},
      { OTEL_BLRP_MAX_QUEUE_SIZE: '10', OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '20' },
    );
    expect(fromEnv.maxExportBatchSize).toBe(10);
    expect(warned(/maxExportBatchSize must be smaller or equal to maxQueueSize/)).toHaveLength(2);
  });

  it('a relative spool directory is made absolute once, against the working directory at construction', () => {
    const cfg = resolveProcessorConfig({}, { KUBERNAUT_AUDIT_SPOOL_DIR: 'var/audit-spool' });
    expect(cfg.spool?.directory).toBe(resolve('var/audit-spool'));
    const code = resolveProcessorConfig({ spool: { directory: './spool' } }, {});
    expect(isAbsolute(code.spool?.directory as string)).toBe(true);
  });

  it('"~/…", which only a shell expands, is the home directory, with a warning', () => {
    const cfg = resolveProcessorConfig({}, { KUBERNAUT_AUDIT_SPOOL_DIR: '~/audit-spool' });
    expect(cfg.spool?.directory).toBe(join(homedir(), 'audit-spool'));
    expect(warned(/KUBERNAUT_AUDIT_SPOOL_DIR.*"~".*home directory/)).toHaveLength(1);
  });
});

describe('OTEL_SERVICE_NAME in the default spool directory', () => {
  it('a service name too long for a file name still gives a directory that can be created', () => {
    const dir = defaultSpoolDirectory('payments-'.repeat(40), 'http://ds:8080', 16);
    expect(Buffer.byteLength(basename(dir))).toBeLessThanOrEqual(255);
    expect(() => mkdirSync(join(tempDir(), basename(dir)))).not.toThrow();
    // Names that fit keep their directory (a spool left by an earlier version is found).
    expect(basename(defaultSpoolDirectory('p'.repeat(200), 'http://ds:8080'))).toMatch(
      /^p{200}-[0-9a-f]{8}$/,
    );
    // The standalone exporter's dead-letter file too.
    const deadLetters = defaultDeadLetterPath({ OTEL_SERVICE_NAME: 'payments-'.repeat(40) });
    const parent = basename(dirname(deadLetters));
    expect(Buffer.byteLength(parent)).toBeLessThanOrEqual(255);
    expect(() => mkdirSync(join(tempDir(), parent))).not.toThrow();
    expect(basename(dirname(defaultDeadLetterPath({ OTEL_SERVICE_NAME: 'p'.repeat(200) })))).toBe(
      'p'.repeat(200),
    );
  });
});

describe('a processor registered twice with one LoggerProvider', () => {
  it.each([
    ['AuditLogRecordProcessor', processorFor],
    ['ThreadedAuditLogRecordProcessor', threadedProcessorFor],
  ] as const)('%s: each audit record is stored once, not twice under two seqs, with a warning', async (_name, make) => {
    const processor = make(ds);
    const provider = new LoggerProvider({ processors: [processor, processor] });
    for (let i = 0; i < 5; i++)
      provider.getLogger('t').emit(auditRecord(`twice-${_name}:${i}`, 'twice'));
    await provider.forceFlush();
    expect(deliveredIds(ds).filter((id) => id.startsWith(`twice-${_name}:`))).toEqual(
      Array.from({ length: 5 }, (_, i) => `twice-${_name}:${i}`),
    );
    expect(warned(/registered more than once with a LoggerProvider/)).toHaveLength(1);
    await provider.shutdown();
  });
});
