// SPDX-License-Identifier: Apache-2.0
/*
 * `kubernaut-audit verify` against a hostile world: a DataStorage (or what answers in its place)
 * whose paging is broken, answers of the wrong shape, and provenance that declares absurd
 * ranges. Every run ends in bounded time with a documented exit code, and never with a
 * COMPLETE verdict on a trail it did not see.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { ProvenanceStamper } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { nodeBinary, sampleEvent, storedForm } from '@kubernaut/test-kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredEvent, VerifyReport } from '../src/analyze.ts';
import { analyze } from '../src/analyze.ts';
import { DataStorageReader } from '../src/client.ts';
import { replaySidecarPath } from '../src/dead-letters.ts';
import { formatReport } from '../src/format.ts';
import { markdownReport } from '../src/report.ts';
import { runCli } from './run-cli.ts';
import { type StubDataStorage, startStub } from './stub-datastorage.ts';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

let dir: string;
const servers: Server[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kn-hostile-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const run = runCli;
/** The seq block of the crashed producer below (2^40: a window no walk seq by seq could finish). */
const BLOCK = 2 ** 40;

/** A loopback server whose answer `status` starts with `prefix`, then `byte` for ever. */
async function endlessServer(status: number, prefix: string, byte: number): Promise<string> {
  const chunk = Buffer.alloc(64 * 1024, byte);
  const server = createServer((req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.write(prefix);
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) {}
    };
    res.on('drain', pump);
    req.socket.on('close', () => res.destroy());
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A loopback server answering every query with `answer(offset, limit)`; verify-chain is valid. */
async function fakeDataStorage(
  answer: (offset: number, limit: number) => { data: unknown; total: number },
): Promise<{ url: string; queries: () => number }> {
  let queries = 0;
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    res.writeHead(200, { 'content-type': 'application/json' });
    if (u.pathname === '/api/v1/audit/verify-chain') {
      res.end(JSON.stringify({ is_valid: true, total_events: 1, tampered_events: [] }));
      return;
    }
    queries++;
    const offset = Number(u.searchParams.get('offset'));
    const limit = Number(u.searchParams.get('limit'));
    const { data, total } = answer(offset, limit);
    res.end(JSON.stringify({ data, pagination: { limit, offset, total, has_more: true } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    queries: () => queries,
  };
}

/** A clean trail of `n` stamped events of one producer, newest first as DataStorage pages. */
function trail(n: number): StoredEvent[] {
  const stamper = ProvenanceStamper.open({ producerId: 'prod-h' });
  const t0 = Date.now() - 600_000;
  return Array.from({ length: n }, (_, i) =>
    storedForm(
      stamper.stamp(sampleEvent(i, { event_timestamp: new Date(t0 + i * 1000).toISOString() })),
    ),
  ).reverse();
}

describe('verify: paging that does not page', () => {
  it('a server that ignores the offset (the newest page again and again) is an error, never COMPLETE', async () => {
    const events = trail(2500);
    const ds = await fakeDataStorage((_offset, limit) => ({
      data: events.slice(0, limit),
      total: events.length,
    }));
    const r = await run('verify', '--url', ds.url, '--since', '1h');
    // The newest 1000 seqs form a gap-free run: judged alone they would read as COMPLETE.
    expect(r.code).toBe(2);
    expect(r.out).not.toContain('COMPLETE');
    expect(r.err).toMatch(
      /reported 2500 events in window .* but its pages held only 1000 distinct/,
    );
    expect(ds.queries()).toBeLessThan(20);
  });

  it('a page repeated for ever under an enormous total ends promptly (bounded requests and memory)', async () => {
    const events = trail(10);
    const ds = await fakeDataStorage(() => ({ data: events, total: 1e12 }));
    // (Under the default --max-events such a count is refused before any paging: see below.)
    const r = await run(
      'verify',
      '--url',
      ds.url,
      '--since',
      '1h',
      '--max-events',
      '2000000000000',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/pages held only 10 distinct/);
    // Without the guard a window claiming 1e12 events is split down to single milliseconds.
    expect(ds.queries()).toBeLessThan(200);
  });

  it('a server counting as many events in every half as in the whole is an error, not millions of requests', async () => {
    // Distinct events at every offset, 6000 claimed for any window: split for ever before.
    const [one] = trail(1);
    let n = 0;
    const ds = await fakeDataStorage((_offset, limit) => ({
      data: Array.from({ length: limit }, () => ({ ...one, event_id: `e-${n++}` })),
      total: 6000,
    }));
    const r = await run('verify', '--url', ds.url, '--since', '1h');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/reported 6000 events in window .* but more in its halves/);
    expect(ds.queries()).toBeLessThan(50);
  });

  it('a window counted over --max-events is an error before anything is read', async () => {
    const ds = await fakeDataStorage(() => ({ data: trail(3), total: 7_000_000 }));
    const r = await run('verify', '--url', ds.url, '--since', '1h');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /reports 7000000 events in .* more than the 5000000 one run holds in memory/,
    );
    expect(ds.queries()).toBe(1);
    const lower = await run('verify', '--url', ds.url, '--since', '1h', '--max-events', '2');
    expect(lower.err).toMatch(/more than the 2 one run holds/);
  });

  for (const bad of ['0', '-1', 'many', '1.5']) {
    it(`--max-events ${bad} is a usage error`, async () => {
      const r = await run('verify', '--url', 'http://127.0.0.1:9', `--max-events=${bad}`);
      expect(r.code).toBe(2);
      expect(r.err).toContain('--max-events: expected a whole number');
    });
  }

  it('data that are not all objects are not a DataStorage answer: a clear error, exit 2', async () => {
    const events = trail(3);
    const ds = await fakeDataStorage(() => ({ data: [null, 7, ...events], total: 5 }));
    const r = await run('verify', '--url', ds.url, '--since', '1h');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/data that are not all events/);
    expect(r.err).not.toMatch(/TypeError|Cannot read properties/);
  });
});

describe('verify: a declared crash window of any size', () => {
  let stub: StubDataStorage;
  beforeEach(async () => {
    stub = await startStub((e) => storedForm(e as unknown as AuditEventRequest));
  });
  afterEach(async () => {
    await stub.close();
  });

  /**
   * Session 1 reserves a block of BLOCK seqs, stamps 3 records and dies; session 2 declares the
   * crash window 4..BLOCK on its first record and stamps 3 more.
   */
  function crashedProducer() {
    const open = () =>
      ProvenanceStamper.open({ directory: dir, producerId: 'prod-big', blockSize: BLOCK });
    const s1 = open();
    const first = Array.from({ length: 3 }, (_, i) => s1.stamp(sampleEvent(i)));
    const s2 = open();
    const second = Array.from({ length: 3 }, (_, i) => s2.stamp(sampleEvent(3 + i)));
    s2.close(true);
    return { first, second };
  }

  it('a producer with a huge seq block that crashed is judged in bounded time (real CLI)', async () => {
    // Judging the crash window 4..2^40 must not walk it seq by seq.
    const { first, second } = crashedProducer();
    for (const e of [...first, ...second]) stub.events.push(storedForm(e));
    const { stdout } = await promisify(execFile)(
      nodeBinary(),
      ['--conditions=@kubernaut/source', BIN, 'verify', '--url', stub.url, '--json'],
      { timeout: 30_000 },
    );
    const report = JSON.parse(stdout) as VerifyReport;
    const p = report.producers[0];
    expect(p?.crash_windows).toEqual([
      expect.objectContaining({ from: 4, to: BLOCK, unaccounted: BLOCK - 3 }),
    ]);
    expect(p?.gaps).toEqual([]);
    expect(p?.chain_breaks).toEqual([]); // the chain links across the window
    expect(report.verdict).toBe('complete');
  });

  it('a record deleted beside a huge crash window is still a gap', async () => {
    const { first, second } = crashedProducer();
    // seq 2 deleted, and seq BLOCK+2 (in the second session)
    for (const e of [first[0], first[2], second[0], second[2]])
      stub.events.push(storedForm(e as AuditEventRequest));
    const r = await run('verify', '--url', stub.url, '--json');
    expect(r.code).toBe(1);
    const p = (JSON.parse(r.out) as VerifyReport).producers[0];
    expect(p?.gaps.map((g) => [g.from, g.to])).toEqual([
      [2, 2],
      [BLOCK + 2, BLOCK + 2],
    ]);
  });
});

describe('verify: answers that never end', () => {
  it('an endless body is cut at maxAnswerBytes: an error, with memory bounded by the limit', async () => {
    const url = await endlessServer(200, '{"data":["', 0x61);
    const reader = new DataStorageReader({ url, maxAnswerBytes: 4 * 1024 * 1024 });
    const until = new Date();
    await expect(
      reader.readEvents({ since: new Date(until.getTime() - 3_600_000), until }),
    ).rejects.toThrow(/answered with more than 4194304 bytes/);
  });

  it('a --timeout no timer can wait is a usage error, exit 2', async () => {
    const r = await run('verify', '--url', 'http://127.0.0.1:9', '--timeout', '99999999999');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--timeout: at most 4294967295 ms');
    expect(r.err).toContain('usage:');
  });
});

describe('verify: a provenance stamp that is there but malformed', () => {
  // DataStorage stores what the exporter sent, and the exporter writes only well-formed stamps:
  // a stamp that cannot be read was altered or corrupted after it was written. Counting its
  // record as "without provenance" would shorten the judged seq range without a finding.
  const mangles: Array<[string, (stamp: Record<string, unknown>) => void]> = [
    ['a seq that is a string', (p) => (p.seq = String(p.seq))],
    ['a seq of 0', (p) => (p.seq = 0)],
    ['no producer id', (p) => delete p.producer_id],
  ];
  for (const [what, mangle] of mangles) {
    it(`the last record with ${what} is a finding: INCOMPLETE, never COMPLETE`, () => {
      const events = trail(5).reverse(); // oldest first
      const last = events[4] as StoredEvent;
      mangle((last.event_data as Record<string, Record<string, unknown>>).audit_provenance ?? {});
      const r = analyze({ events });
      expect(r.verdict).toBe('incomplete');
      expect(r.malformed_provenance.count).toBe(1);
      expect(r.malformed_provenance.events[0]?.event_id).toBe(last.event_id);
      expect(r.without_provenance.count).toBe(0);
      expect(formatReport(r)).toContain('events whose provenance stamp is malformed: 1');
      expect(
        markdownReport(r, { url: 'u', keys: [], digestLogs: [], expectProducers: [] }),
      ).toContain('malformed provenance stamp');
    });
  }

  it('an event with no stamp at all is still only listed as without provenance', () => {
    const events = trail(3);
    const plain = storedForm(sampleEvent(9));
    const r = analyze({ events: [...events, plain] });
    expect(r.verdict).toBe('complete');
    expect(r.without_provenance.count).toBe(1);
    expect(r.malformed_provenance.count).toBe(0);
  });
});

describe('dead-letters replay: an answer that never ends', () => {
  it('a 201 with an endless body fails the replay (exit 1), records nothing, in bounded time', async () => {
    const url = await endlessServer(201, '{"event_ids":[', 0x20);
    const event = ProvenanceStamper.open({ producerId: 'prod-r' }).stamp(sampleEvent(1));
    const file = join(dir, 'dead-letter.jsonl');
    writeFileSync(file, `${JSON.stringify({ time: 't', reason: 'rejected', event })}\n`);
    const r = await run('dead-letters', 'replay', file, '--url', url, '--all');
    expect(r.code).toBe(1);
    expect(r.err).toContain('answered with more than 1048576 bytes');
    expect(() => readFileSync(replaySidecarPath(file))).toThrow();
  });
});

describe('files that are not regular files (a FIFO, a device)', () => {
  let stub: StubDataStorage;
  beforeEach(async () => {
    stub = await startStub((e) => storedForm(e as unknown as AuditEventRequest));
  });
  afterEach(async () => {
    await stub.close();
  });

  /** The real CLI in a child: a hang is its timeout, not the test worker's. */
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    return promisify(execFile)(nodeBinary(), ['--conditions=@kubernaut/source', BIN, ...args], {
      timeout: 20_000,
      killSignal: 'SIGKILL',
    }).then(
      ({ stdout, stderr }) => ({ code: 0, out: stdout, err: stderr }),
      (e: { code?: number; killed?: boolean; stdout: string; stderr: string }) => {
        if (e.killed) throw new Error(`kubernaut-audit ${args.join(' ')} hung (killed at 20 s)`);
        return { code: e.code ?? -1, out: e.stdout, err: e.stderr };
      },
    );
  }

  it('every file a command reads is refused with a clear error, never read for ever', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kn-odd-'));
    try {
      const fifo = join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const zero = join(dir, 'zero');
      symlinkSync('/dev/zero', zero);
      for (const file of [fifo, zero]) {
        const list = await cli('dead-letters', 'list', file);
        expect(list.code).toBe(2);
        expect(list.err).toContain('not a regular file');
        const key = await cli('verify', '--url', stub.url, '--public-key', file);
        expect(key.code).toBe(2);
        expect(key.err).toContain(`--public-key ${file}`);
        const digest = await cli('verify', '--url', stub.url, '--digest-log', file);
        expect(digest.code).toBe(2);
        const fixed = await cli('dead-letters', 'replay', file, '--url', stub.url, '--fixed', file);
        expect(fixed.code).toBe(2);
      }
      // A spool whose segment is a FIFO: inspect and check say so, and end.
      const spool = join(dir, 'spool');
      mkdirSync(spool);
      writeFileSync(join(spool, 'meta.json'), JSON.stringify({ format: 2, lanes: 1 }));
      execFileSync('mkfifo', [join(spool, '00000000000000000001.kaf')]);
      for (const command of ['inspect', 'check']) {
        const r = await cli('spool', command, spool);
        expect(r.code).not.toBe(0);
        expect(r.err).toContain('00000000000000000001.kaf is a FIFO');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
