// SPDX-License-Identifier: Apache-2.0
/*
 * `kubernaut-audit spool inspect|check` on spools written by the real processor (real SDK,
 * spool on disk) while DataStorage is down or never answers: what they report, the damage a
 * flipped byte makes (with its offset), a spool held by a live process (inspected without
 * taking it over), and a read-only directory (nothing written, byte for byte).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { checkFrame, segmentName } from '@kubernaut/audit-spool-format';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { openSpool } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { cleanupTempDirs, FaultServer, freePort, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/index.ts';
import { EXIT_NOT_A_SPOOL, EXIT_SPOOL_DAMAGED } from '../src/index.ts';

const HOLDER = fileURLToPath(new URL('./fixtures/spool-holder.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/kubernaut-audit.js', import.meta.url));

afterAll(() => cleanupTempDirs());

/** Whether uid 65534 can start the CLI of this checkout (every parent directory traversable). */
function nobodyCanRun(): boolean {
  const r = spawnSync(nodeBinary(), [BIN, '--version'], {
    uid: 65534,
    gid: 65534,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return r.error === undefined && r.status === 0;
}

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

function record(i: number, valid = true) {
  return {
    eventName: 'gateway.signal.received',
    body: {
      signal_type: 'alert',
      signal_name: 'HighMemoryUsage',
      namespace: 'payment',
      fingerprint: `r${i}`,
    },
    attributes: {
      'audit.event.category': 'gateway',
      'audit.event.action': 'received',
      ...(valid ? { 'audit.event.outcome': 'success' } : {}),
      'audit.correlation.id': `corr-${i % 3}`,
      'audit.resource.type': 'Signal',
      'audit.resource.id': `r${i}`,
    },
  };
}

/**
 * A spool written by the real processor: `count` valid records and one invalid (dead-lettered),
 * DataStorage at `url` not delivering; shut down after a short wait, leaving the records.
 */
async function writeSpool(url: string, count: number): Promise<string> {
  const dir = tempDir();
  const processor = new AuditLogRecordProcessor({
    exporter: new KubernautAuditExporter({
      url,
      timeoutMillis: 60_000,
      retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
    }),
    spool: { directory: dir },
    shutdownTimeoutMillis: 300,
  });
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('spool-test');
  for (let i = 0; i < count; i++) logger.emit(record(i));
  logger.emit(record(count, false));
  await provider.shutdown();
  return dir;
}

interface ScanJson {
  status: string;
  format: number;
  destination: string | null;
  service: string | null;
  producer_id: string | null;
  lanes: number;
  records: number;
  bytes: number;
  oldest_age_seconds: number;
  sent_not_acked: number;
  per_lane: Array<{ lane: number; records: number; bytes: number }>;
  damaged: Array<{ file: string; offset: number; length: number; reason: string }>;
  dead_letters: Array<{ file: string; entries: number; bytes: number }>;
  lock: { state: string; owner: { pid?: number } | null };
}

async function inspectJson(dir: string): Promise<ScanJson> {
  const r = await run('spool', 'inspect', dir, '--json');
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as ScanJson;
}

/** Names, sizes, mtimes and content hashes of every file: what "nothing written" compares. */
function snapshot(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((n) => {
      const s = statSync(join(dir, n));
      const hash = createHash('sha256')
        .update(readFileSync(join(dir, n)))
        .digest('hex');
      return `${n} ${s.size} ${s.mtimeMs} ${s.mode.toString(8)} ${hash}`;
    });
}

describe('kubernaut-audit spool inspect|check', () => {
  it('the tool carries neither the OpenTelemetry SDK nor the exporter', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(pkg.dependencies).sort()).toEqual([
      '@kubernaut/audit-provenance',
      '@kubernaut/audit-semantic-conventions',
      '@kubernaut/audit-spool-format',
      '@kubernaut/datastorage-contract',
    ]);
    const spoolFormat = JSON.parse(
      readFileSync(new URL('../../audit-spool-format/package.json', import.meta.url), 'utf8'),
    ) as { dependencies?: Record<string, string> };
    expect(spoolFormat.dependencies ?? {}).toEqual({});
  });

  it('reports what the real processor left while DataStorage was down', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const dir = await writeSpool(url, 40);
    const scan = await inspectJson(dir);
    expect(scan).toMatchObject({ status: 'clean', format: 2, records: 40 });
    expect(scan.destination).toContain(new URL(url).host);
    expect(scan.producer_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(scan.bytes).toBeGreaterThan(40 * 200);
    expect(scan.per_lane.reduce((n, l) => n + l.records, 0)).toBe(40);
    expect(scan.per_lane).toHaveLength(scan.lanes);
    expect(scan.oldest_age_seconds).toBeGreaterThanOrEqual(0);
    expect(scan.oldest_age_seconds).toBeLessThan(60);
    expect(scan.damaged).toEqual([]);
    expect(scan.dead_letters).toEqual([
      expect.objectContaining({ file: 'dead-letter.jsonl', entries: 1 }),
    ]);
    // Closed by shutdown: the lock is free, lock.owner names the last owner (this process).
    expect(scan.lock.state).toBe('free');
    expect(scan.lock.owner?.pid).toBe(process.pid);

    const text = await run('spool', 'inspect', dir);
    expect(text.code).toBe(0);
    expect(text.out).toContain('40 unacknowledged');
    expect(text.out).toContain('dead-letter.jsonl: 1 entry');
    expect(text.out).toMatch(/lock\s+free: no live owner/);
    const check = await run('spool', 'check', dir);
    expect(check.code).toBe(0);
    expect(check.out).toMatch(/^CLEAN: /);
  });

  it('counts events sent and never answered: delivered again on restart, possible duplicates', async () => {
    const ds = await FaultServer.start();
    try {
      ds.inject({ type: 'slow', delayMillis: 60_000, commit: false }, 100);
      const dir = await writeSpool(ds.url, 30);
      const scan = await inspectJson(dir);
      expect(scan.records).toBe(30);
      expect(ds.requests.length).toBeGreaterThan(0);
      expect(scan.sent_not_acked).toBeGreaterThan(0);
      expect(scan.sent_not_acked).toBeLessThanOrEqual(30);
      expect((await run('spool', 'inspect', dir)).out).toContain('possible duplicates');
    } finally {
      await ds.close();
    }
  });

  it('check: a flipped byte is damage, named by file and offset, with its own exit code', async () => {
    const dir = await writeSpool(`http://127.0.0.1:${await freePort()}`, 20);
    const segment = readdirSync(dir).find((n) => n.endsWith('.kaf'))!;
    expect(segment).toBe(segmentName(1));
    const path = join(dir, segment);
    const buf = readFileSync(path);
    // The offset of the last frame: walk the intact frames.
    const starts: number[] = [];
    for (let at = 0; at < buf.length; ) {
      const head = checkFrame(buf, at)!;
      starts.push(at);
      at += head.frameBytes;
    }
    expect(starts.length).toBeGreaterThan(0);
    const target = starts[starts.length - 1]!;
    const lost = checkFrame(buf, target)!.count;
    buf[target + 40]! ^= 0x20;
    writeFileSync(path, buf);

    const check = await run('spool', 'check', dir);
    expect(check.code).toBe(1);
    expect(check.out).toMatch(/^DAMAGED: /);
    expect(check.out).toContain(`${segment} at offset ${target}`);
    const json = await run('spool', 'check', dir, '--json');
    expect(json.code).toBe(1);
    const scan = JSON.parse(json.out) as ScanJson;
    expect(scan.status).toBe('damaged');
    expect(scan.damaged).toEqual([
      { file: segment, offset: target, length: buf.length - target, reason: 'checksum' },
    ]);
    expect(scan.records).toBe(20 - lost);
    // inspect lists the damage and still exits 0 (check is the judge).
    const inspect = await run('spool', 'inspect', dir);
    expect(inspect.code).toBe(0);
    expect(inspect.out).toContain(`at offset ${target}`);

    // The exporter's recovery judges the same bytes alike: one damaged region, the same records.
    const spool = openSpool({ directory: dir });
    try {
      expect(spool.kind).toBe('file');
      expect(spool.stats()).toMatchObject({ corrupted: 1, records: 20 - lost });
    } finally {
      spool.close();
    }
  });

  it('check: a segment cut at a frame boundary is damage too: the events its SENT marks name are gone', async () => {
    const dir = await writeSpool(`http://127.0.0.1:${await freePort()}`, 20);
    const path = join(dir, segmentName(1));
    const buf = readFileSync(path);
    const starts: number[] = [];
    for (let at = 0; at < buf.length; ) {
      starts.push(at);
      at += checkFrame(buf, at)!.frameBytes;
    }
    expect(starts.length).toBeGreaterThan(1);
    const cut = starts[starts.length - 1]!;
    const lost = checkFrame(buf, cut)!.count;
    writeFileSync(path, buf.subarray(0, cut)); // no byte is wrong: the last frame is gone
    expect((await inspectJson(dir)).sent_not_acked).toBe(20 - lost); // were all sent once

    const r = await run('spool', 'check', dir, '--json');
    expect(r.code).toBe(1);
    const scan = JSON.parse(r.out) as ScanJson & { missing: number };
    expect(scan.missing).toBe(lost);
    expect(scan.damaged).toEqual([
      { file: segmentName(1), offset: cut, length: 0, reason: 'missing', events: lost },
    ]);
    const text = await run('spool', 'check', dir);
    expect(text.out).toContain(
      `${segmentName(1)} at offset ${cut}: ${lost} unacknowledged events are gone`,
    );
    // The exporter's recovery judges it alike: one damaged region, the same records.
    const spool = openSpool({ directory: dir });
    try {
      expect(spool.stats()).toMatchObject({ corrupted: 1, records: 20 - lost });
    } finally {
      spool.close();
    }
  });

  it('check: a segment or log grown past what a writer makes (3 GiB sparse) is read up to that bound, the rest reported, as recovery judges it', async () => {
    const dir = await writeSpool(`http://127.0.0.1:${await freePort()}`, 20);
    const segment = join(dir, segmentName(1));
    const log = join(dir, 'sent-ack.log');
    const segmentBytes = statSync(segment).size;
    const logBytes = statSync(log).size;
    truncateSync(segment, 3 * 1024 ** 3);
    truncateSync(log, 3 * 1024 ** 3);
    const r = await run('spool', 'check', dir, '--json');
    expect(r.code, r.err).toBe(1);
    const scan = JSON.parse(r.out) as ScanJson;
    expect(scan.records).toBe(20); // every frame before the bound is read
    const oversized = scan.damaged.filter((d) => d.reason === 'oversized');
    expect(oversized.map((d) => [d.file, d.length > 2 * 1024 ** 3])).toEqual([
      [segmentName(1), true],
      ['sent-ack.log', true],
    ]);
    expect(segmentBytes).toBeGreaterThan(0);
    expect(logBytes).toBeGreaterThan(0);
    const text = await run('spool', 'check', dir);
    expect(text.out).toContain('past the most a writer puts in this file');
    // The exporter's recovery reads the same bounds: the same records.
    const spool = openSpool({ directory: dir });
    try {
      expect(spool.stats().records).toBe(20);
    } finally {
      spool.close();
    }
  }, 60_000);

  it('check: a frame cut short by the end of its segment is a torn tail', async () => {
    const dir = await writeSpool(`http://127.0.0.1:${await freePort()}`, 10);
    const path = join(dir, segmentName(1));
    const buf = readFileSync(path);
    writeFileSync(path, buf.subarray(0, buf.length - 7));
    const r = await run('spool', 'check', dir, '--json');
    expect(r.code).toBe(1);
    const scan = JSON.parse(r.out) as ScanJson;
    expect(scan.damaged).toHaveLength(1);
    expect(scan.damaged[0]).toMatchObject({ file: segmentName(1), reason: 'torn_tail' });
  });

  it('not a spool, a missing directory: exit 3, also with --json; usage errors stay 2', async () => {
    const empty = tempDir();
    writeFileSync(join(empty, 'notes.txt'), 'hello');
    const r = await run('spool', 'check', empty);
    expect(r.code).toBe(3);
    expect([EXIT_SPOOL_DAMAGED, EXIT_NOT_A_SPOOL]).toEqual([1, 3]);
    expect(r.err).toContain('is not an audit spool');
    const j = await run('spool', 'inspect', join(empty, 'missing'), '--json');
    expect(j.code).toBe(3);
    expect(JSON.parse(j.out)).toMatchObject({ status: 'not_a_spool', code: 'not_found' });
    expect((await run('spool', 'check')).code).toBe(2);
    const help = await run('spool', 'check', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(
      /Exit codes:\n {2}0 {2}clean[^\n]*\n {2}1 {2}damaged[^\n]*\n {2}2 {2}usage[^\n]*\n {2}3 {2}not a spool/,
    );
  });

  it('reads a format 1 spool as its migration will: records, oldest, damage; migrated on next start', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'meta.json'),
      JSON.stringify({
        format: 1,
        producerId: '6f0c0b3e-1111-4222-8333-444455556666',
        createdAt: 'x',
      }),
    );
    const frames: Buffer[] = [];
    for (let seq = 1; seq <= 5; seq++) {
      const payload = Buffer.from(
        JSON.stringify({ t: 1000 + seq, e: { correlation_id: `c-${seq}` } }),
      );
      const body = Buffer.alloc(16 + payload.length);
      body.writeDoubleLE(seq, 0);
      body.writeDoubleLE(now() - 60_000 + seq, 8);
      payload.copy(body, 16);
      frames.push(legacyFrame('KAUR', body));
    }
    const segment = join(dir, `${'1'.padStart(20, '0')}.seg`);
    writeFileSync(segment, Buffer.concat(frames));
    const ack = Buffer.alloc(16);
    ack.writeDoubleLE(2, 0);
    ack.writeDoubleLE(3, 8);
    writeFileSync(join(dir, 'acks.log'), legacyFrame('KAUA', ack));

    const r = await run('spool', 'inspect', dir);
    expect(r.code).toBe(0);
    expect(r.out).toContain('1 (earlier version): migrated on next start');
    expect(r.out).toContain('3 unacknowledged');
    const c = await run('spool', 'check', dir, '--json');
    expect(c.code).toBe(0);
    const clean = JSON.parse(c.out) as ScanJson & { note: string };
    expect(clean).toMatchObject({
      format: 1,
      note: 'format 1, migrated on next start',
      records: 3,
    });
    expect(clean.oldest_age_seconds).toBeGreaterThanOrEqual(59);

    // A flipped bit in record 4: damage at its offset, as the migration would skip it.
    const at = frames[0]!.length + frames[1]!.length + frames[2]!.length;
    const buf = readFileSync(segment);
    buf[at + 20]! ^= 0x04;
    writeFileSync(segment, buf);
    const d = await run('spool', 'check', dir);
    expect(d.code).toBe(1);
    expect(d.out).toContain(`${'1'.padStart(20, '0')}.seg at offset ${at}`);
  });

  it('a spool held by a live process is inspected without taking it over', async () => {
    const dir = await writeSpool(`http://127.0.0.1:${await freePort()}`, 5);
    const child: ChildProcess = spawn(nodeBinary(), ['--conditions=@kubernaut/source', HOLDER], {
      env: { ...process.env, SPOOL_DIR: dir },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    try {
      expect((await lines.next()).value).toBe('READY file');
      // What the owner wrote when it opened the spool (its recovery) is its business; from here
      // on, only the inspections run.
      const before = snapshot(dir);
      const scan = await inspectJson(dir);
      expect(scan.lock.state).toBe('held');
      expect(scan.lock.owner?.pid).toBe(child.pid);
      expect(scan.records).toBe(5);
      expect((await run('spool', 'check', dir)).code).toBe(0);
      expect((await run('spool', 'inspect', dir)).out).toContain(
        `HELD by a live process (last owner per lock.owner: pid ${child.pid}`,
      );
      // The child still holds it: it still writes to its directory, and nobody else can take it.
      child.stdin!.write('STATUS\n');
      expect((await lines.next()).value).toBe('STATUS file');
      expect((await inspectJson(dir)).lock.state).toBe('held');
      expect(snapshot(dir)).toEqual(before);
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    // Killed: the kernel released the lock at once.
    expect((await inspectJson(dir)).lock.state).toBe('free');
  });

  it('works on a read-only directory, and writes nothing', async () => {
    const dir = await writeSpool(`http://127.0.0.1:${await freePort()}`, 8);
    for (const n of readdirSync(dir)) chmodSync(join(dir, n), 0o444);
    chmodSync(dir, 0o555);
    const before = snapshot(dir);
    try {
      // The real command in its own process; as root (who writes anyway) it runs as nobody, when
      // nobody can reach this checkout (a clone in a private 0700 directory is out of its reach:
      // then root runs it, and the byte-for-byte comparison below is what shows nothing was written).
      const asNobody = process.getuid?.() === 0 && nobodyCanRun() ? { uid: 65534, gid: 65534 } : {};
      const exec = promisify(execFile);
      for (const command of ['inspect', 'check']) {
        const { stdout } = await exec(nodeBinary(), [BIN, 'spool', command, dir, '--json'], {
          ...asNobody,
          env: { ...process.env, NODE_OPTIONS: '' },
        });
        const scan = JSON.parse(stdout) as ScanJson;
        expect(scan).toMatchObject({ status: 'clean', records: 8 });
        expect(scan.lock.state).toBe('free');
      }
      expect(snapshot(dir)).toEqual(before);
    } finally {
      chmodSync(dir, 0o755);
    }
  });
});

const now = () => Date.now();

/** A format 1 frame: magic | crc32(bodyLength, body) | bodyLength | body. */
function legacyFrame(magic: string, body: Buffer): Buffer {
  const f = Buffer.alloc(12 + body.length);
  f.write(magic, 0, 'latin1');
  f.writeUInt32LE(body.length, 8);
  body.copy(f, 12);
  f.writeUInt32LE(crc32(f.subarray(8)), 4);
  return f;
}
