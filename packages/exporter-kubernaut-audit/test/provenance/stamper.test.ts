// SPDX-License-Identifier: Apache-2.0
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { computeProvenanceHash, readProvenance } from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
import { captureDiag, REPO_ROOT, sampleEvent, specPath, storedForm } from '@kubernaut/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { PROVENANCE_STATE_FILE, ProvenanceStamper } from '../../src/provenance/index.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kn-prov-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  }
});

describe('ProvenanceStamper', () => {
  it('stamps a copy with producer, session, gap-free seq and a hash chain', () => {
    const s = ProvenanceStamper.open({ directory: tempDir(), producerId: 'p-1' });
    const input = sampleEvent(1);
    const a = s.stamp(input);
    const b = s.stamp(sampleEvent(2));
    expect(input.event_data[AUDIT_EVENT_DATA_PROVENANCE_KEY]).toBeUndefined(); // not mutated
    const pa = readProvenance(a);
    const pb = readProvenance(b);
    expect(pa).toMatchObject({
      producer_id: 'p-1',
      session_id: s.sessionId,
      seq: 1,
      prev_hash: null,
    });
    expect(pb).toMatchObject({ producer_id: 'p-1', seq: 2, prev_hash: pa?.hash });
    expect(pa?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(computeProvenanceHash(a as never)).toBe(pa?.hash);
    expect(Object.keys(a.event_data[AUDIT_EVENT_DATA_PROVENANCE_KEY] as object)).toEqual([
      'producer_id',
      'session_id',
      'seq',
      'prev_hash',
      'hash',
    ]);
  });

  it('the hash survives the DataStorage round trip (defaults, µs timestamp, key order) and detects changes', () => {
    const s = ProvenanceStamper.open({ producerId: 'p-r' });
    const e = s.stamp(
      sampleEvent(3, {
        actor_type: undefined,
        actor_id: undefined,
        event_timestamp: '2026-01-02T03:04:05.5+01:00',
      }),
    );
    const stored = storedForm(e);
    expect(stored.event_timestamp).toBe('2026-01-02T02:04:05.500000Z');
    expect(computeProvenanceHash(stored)).toBe(readProvenance(e)?.hash);
    const altered = { ...stored, event_data: { ...(stored.event_data as object), n: 999 } };
    expect(computeProvenanceHash(altered)).not.toBe(readProvenance(e)?.hash);
    expect(computeProvenanceHash({ ...stored, event_outcome: 'failure' })).not.toBe(
      readProvenance(e)?.hash,
    );
  });

  it('continues seq and chain after a clean close, and reserveRejected consumes a seq', () => {
    const dir = tempDir();
    const s1 = ProvenanceStamper.open({ directory: dir, producerId: 'p-2' });
    s1.stamp(sampleEvent(1));
    const r = s1.reserveRejected('invalid');
    const last = s1.stamp(sampleEvent(2));
    expect(r).toEqual({ producer_id: 'p-2', session_id: s1.sessionId, seq: 2 });
    s1.close(true);
    const s2 = ProvenanceStamper.open({ directory: dir, producerId: 'p-2' });
    expect(s2.sessionId).not.toBe(s1.sessionId);
    expect(s2.pendingDeclaration).toBeUndefined();
    const next = s2.stamp(sampleEvent(4));
    const p = readProvenance(next) as unknown as Record<string, unknown>;
    expect(p).toMatchObject({ seq: 4, prev_hash: readProvenance(last)?.hash });
    expect(p.recovered).toBeUndefined();
    s2.close(true);
    // A different producer id (a replaced spool) starts a new sequence.
    const s4 = ProvenanceStamper.open({ directory: dir, producerId: 'p-3' });
    expect(readProvenance(s4.stamp(sampleEvent(5)))).toMatchObject({
      producer_id: 'p-3',
      seq: 1,
      prev_hash: null,
    });
    s4.close(true);
  });

  it('after a crash: starts past the reserved block and declares the unaccounted range once', () => {
    const dir = tempDir();
    const s1 = ProvenanceStamper.open({ directory: dir, producerId: 'p-c', blockSize: 512 });
    s1.stamp(sampleEvent(1));
    const b = s1.stamp(sampleEvent(2));
    // Handed out at emit but never drained (the batch window a SIGKILL takes):
    expect(s1.next()).toBe(3);
    expect(s1.next()).toBe(4);
    // No close: as after SIGKILL.
    const s2 = ProvenanceStamper.open({ directory: dir, producerId: 'p-c', blockSize: 512 });
    expect(s2.lastSeq).toBe(512);
    const first = s2.stamp(sampleEvent(3));
    const p = (first.event_data as Record<string, Record<string, unknown>>)[
      AUDIT_EVENT_DATA_PROVENANCE_KEY
    ] as Record<string, unknown>;
    expect(p.seq).toBe(513);
    expect(p.recovered).toEqual({
      session_id: s1.sessionId,
      spooled_through: 2,
      reserved_through: 512,
    });
    expect(computeProvenanceHash(first as never)).toBe(p.hash);
    expect(p.prev_hash).toBe(readProvenance(b)?.hash); // the chain continues from seq 2
    // Declared once: the next record carries no declaration.
    const second = readProvenance(s2.stamp(sampleEvent(4))) as unknown as Record<string, unknown>;
    expect(second).toMatchObject({ seq: 514, prev_hash: p.hash });
    expect(second.recovered).toBeUndefined();
    s2.close(true);
    s1.close(false);
  });

  it('continues the chain from the highest record found on the spool after a crash', () => {
    const dir = tempDir();
    const s1 = ProvenanceStamper.open({ directory: dir, producerId: 'p-t2' });
    s1.stamp(sampleEvent(1));
    // The spool holds seq 7 with hash h7, written after the last state write (a crash between).
    const s2 = ProvenanceStamper.open({
      directory: dir,
      producerId: 'p-t2',
      spoolTail: { provSeq: 7, hash: 'a'.repeat(64) },
    });
    expect(s2.pendingDeclaration).toMatchObject({ spooled_through: 7, reserved_through: 512 });
    expect(s2.lastHash).toBe('a'.repeat(64));
    s2.close(true);
    s1.close(false);
  });

  it('persists its state with real ids (uuid producer and session, a full hash)', () => {
    const dir = tempDir();
    const producerId = randomUUID();
    const s1 = ProvenanceStamper.open({ directory: dir, producerId });
    for (let i = 0; i < 3; i++) s1.stamp(sampleEvent(i));
    expect(s1.persistent).toBe(true);
    expect(s1.producerId).toBe(producerId);
    s1.close(true);
    const s2 = ProvenanceStamper.open({ directory: dir, producerId });
    expect(s2.lastSeq).toBe(3);
    expect(s2.lastHash).toBe(s1.lastHash);
    s2.close(true);
  });

  it('loads the state file of format 1 (256-byte slots) as a clean state', () => {
    const dir = tempDir();
    const json = JSON.stringify({ v: 1, producer_id: 'p-old', seq: 41, last_hash: 'f'.repeat(64) });
    const slot = `${crc32(json).toString(16).padStart(8, '0')} ${json}`.padEnd(255, ' ');
    writeFileSync(join(dir, PROVENANCE_STATE_FILE), `${slot}\n${slot}\n`);
    const s = ProvenanceStamper.open({ directory: dir, producerId: 'p-old' });
    expect(s.lastSeq).toBe(41);
    expect(s.pendingDeclaration).toBeUndefined();
    expect(readProvenance(s.stamp(sampleEvent(1)))).toMatchObject({
      seq: 42,
      prev_hash: 'f'.repeat(64),
    });
    s.close(true);
  });

  it('recovers from a torn slot of the state file', () => {
    const dir = tempDir();
    const s1 = ProvenanceStamper.open({ directory: dir, producerId: 'p-t' });
    for (let i = 0; i < 5; i++) s1.stamp(sampleEvent(i));
    s1.close(true);
    const path = join(dir, PROVENANCE_STATE_FILE);
    const buf = readFileSync(path);
    // Damage the slot of the last write (the clean close): the other slot, one write older, is used.
    const slot = buf.subarray(0, 512).toString().includes('"clean":true') ? 0 : 1;
    buf.write('garbage', slot * 512 + 20);
    writeFileSync(path, buf);
    const s2 = ProvenanceStamper.open({ directory: dir, producerId: 'p-t' });
    // The older slot is not clean: treated as a crash after seq 5, never reusing a seq.
    expect(s2.lastSeq).toBeGreaterThanOrEqual(5);
    expect(readProvenance(s2.stamp(sampleEvent(9)))?.seq).toBeGreaterThan(5);
    s2.close(true);
  });

  /** A state of producer `producerId` after seqs 1..5 and a clean close; returns its path. */
  function usedState(dir: string, producerId: string): string {
    const s = ProvenanceStamper.open({ directory: dir, producerId });
    for (let i = 0; i < 5; i++) s.stamp(sampleEvent(i));
    s.close(true);
    return join(dir, PROVENANCE_STATE_FILE);
  }
  const damages: Array<[string, (used: Buffer) => Buffer]> = [
    ['garbage', () => Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 131 + 7) % 256))],
    ['zero bytes (zero-filled)', () => Buffer.alloc(1024)],
    ['truncated below one slot', (used) => used.subarray(0, 100)],
  ];

  it.each(
    damages,
  )('a state file of %s (no valid slot): a fresh producer id in memory, a warning, the file left as it is', (_name, damage) => {
    const dir = tempDir();
    const path = usedState(dir, 'p-d');
    const damaged = damage(readFileSync(path));
    writeFileSync(path, damaged);
    const diagLog = captureDiag();
    try {
      const s = ProvenanceStamper.open({ directory: dir, producerId: 'p-d' });
      expect(s.producerId).not.toBe('p-d');
      expect(s.persistent).toBe(false);
      expect(s.pendingDeclaration).toBeUndefined();
      expect(readProvenance(s.stamp(sampleEvent(1)))).toMatchObject({
        producer_id: s.producerId,
        seq: 1,
        prev_hash: null,
      });
      s.close(true);
      expect(diagLog.messages).toEqual([
        expect.stringMatching(
          new RegExp(
            `provenance\\.state holds no valid state .*p-d.*new producer id ${s.producerId}`,
          ),
        ),
      ]);
      // Left as it is: every later start, too, knows that the state of p-d is lost.
      expect(readFileSync(path)).toEqual(damaged);
      const again = ProvenanceStamper.open({ directory: dir, producerId: 'p-d' });
      expect(again.producerId).not.toBe('p-d');
      expect(again.producerId).not.toBe(s.producerId);
      again.close(true);
      expect(diagLog.messages).toHaveLength(2);
    } finally {
      diagLog.restore();
    }
  });

  it.each(
    damages,
  )('a state file of %s never lets a seq of the producer be reused, with a backlog on the spool', (_name, damage) => {
    const dir = tempDir();
    const path = usedState(dir, 'p-b');
    writeFileSync(path, damage(readFileSync(path)));
    const diagLog = captureDiag();
    try {
      // The spool still holds seqs 11..15 of p-b (their state writes were lost with the file).
      const s = ProvenanceStamper.open({
        directory: dir,
        producerId: 'p-b',
        spoolTail: { provSeq: 15, hash: 'b'.repeat(64) },
      });
      for (let i = 0; i < 20; i++) {
        const p = readProvenance(s.stamp(sampleEvent(i)));
        expect(p?.producer_id).not.toBe('p-b');
      }
      s.close(true);
      expect(diagLog.messages).toEqual([
        expect.stringMatching(/through seq 15: the seqs producer p-b handed out are unknown/),
      ]);
    } finally {
      diagLog.restore();
    }
  });

  it('an empty or missing state file is a first start, unless the spool holds stamped records', () => {
    // Empty: what a kill between creating the file and its first write (both in open(), before
    // any seq is handed out) leaves.
    const empty = tempDir();
    writeFileSync(join(empty, PROVENANCE_STATE_FILE), '');
    const diagLog = captureDiag();
    try {
      for (const directory of [tempDir(), empty]) {
        const s = ProvenanceStamper.open({ directory, producerId: 'p-f' });
        expect(s.persistent).toBe(true);
        expect(readProvenance(s.stamp(sampleEvent(1)))).toMatchObject({
          producer_id: 'p-f',
          seq: 1,
        });
        s.close(true);
      }
      expect(diagLog.messages).toEqual([]);
      // Stamped records on the spool without a state that accounts for them: the state was lost.
      for (const withEmptyFile of [true, false]) {
        const directory = tempDir();
        if (withEmptyFile) writeFileSync(join(directory, PROVENANCE_STATE_FILE), '');
        const s = ProvenanceStamper.open({
          directory,
          producerId: 'p-l',
          spoolTail: { provSeq: 15, hash: 'c'.repeat(64) },
        });
        expect(s.producerId).not.toBe('p-l');
        expect(s.persistent).toBe(false);
        expect(readProvenance(s.stamp(sampleEvent(1)))?.producer_id).toBe(s.producerId);
        s.close(true);
      }
      expect(diagLog.messages).toEqual([
        expect.stringMatching(
          /is missing or empty; the spool holds stamped records through seq 15: .*p-l/,
        ),
        expect.stringMatching(
          /is missing or empty; the spool holds stamped records through seq 15: .*p-l/,
        ),
      ]);
    } finally {
      diagLog.restore();
    }
  });

  it('falls back to memory under a new producer id when the state cannot be written, without throwing', () => {
    const dir = tempDir();
    const s = ProvenanceStamper.open({
      directory: join(dir, 'missing', 'deeper'),
      producerId: 'p-x',
    });
    expect(s.persistent).toBe(false);
    expect(s.producerId).not.toBe('p-x');
    expect(readProvenance(s.stamp(sampleEvent(1)))?.seq).toBe(1);
  });

  it('returns the event unstamped (never throws) when it cannot be canonicalised', () => {
    const s = ProvenanceStamper.open({ producerId: 'p-u' });
    const bad = sampleEvent(1, { event_data: { event_type: 'x', big: 1n } as never });
    expect(s.stamp(bad)).toBe(bad);
    expect(s.lastSeq).toBe(0);
  });

  it('stamped events still validate against the upstream OpenAPI spec', () => {
    const validator = OpenApiValidator.fromFile(specPath());
    const s = ProvenanceStamper.open({ producerId: 'p-v' });
    for (let i = 0; i < 5; i++) {
      const e = s.stamp(sampleEvent(i));
      expect(validator.validate(e)).toEqual([]);
    }
  });

  it('never hands out a seq twice across SIGKILL', async () => {
    const dir = tempDir();
    const script = join(dir, 'stamp-loop.ts');
    const stamperPath = fileURLToPath(new URL('../../src/provenance/stamper.ts', import.meta.url));
    writeFileSync(
      script,
      `import { ProvenanceStamper } from ${JSON.stringify(stamperPath)};
const s = ProvenanceStamper.open({ directory: ${JSON.stringify(dir)}, producerId: 'p-kill' });
const ev = { version: '1.0', event_type: 't', event_timestamp: new Date().toISOString(), event_category: 'gateway',
  event_action: 'a', event_outcome: 'success', correlation_id: 'c', event_data: { event_type: 't' } };
// Stamp in small batches and yield, so that stdout (asynchronous on a pipe) is flushed.
const tick = () => {
  let out = '';
  for (let i = 0; i < 50; i++) out += s.stamp(ev).event_data.audit_provenance.seq + '\\n';
  process.stdout.write(out);
  setImmediate(tick);
};
tick();
setTimeout(() => process.exit(3), 30_000); // never outlive a broken test
`,
    );
    const node =
      Number(process.versions.node.split('.')[0]) >= 23
        ? process.execPath
        : join(REPO_ROOT, 'node_modules/.bin/node');
    const child = spawn(node, ['--conditions=@kubernaut/source', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let printed = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          for (const l of lines) printed = Math.max(printed, Number(l));
          if (printed >= 2000 && !child.killed) {
            child.kill('SIGKILL');
            resolve();
          }
        });
        child.on('exit', (code, signal) => {
          if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} ${signal}`));
        });
      });
      await new Promise((r) => child.once('close', r));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const s = ProvenanceStamper.open({ directory: dir, producerId: 'p-kill' });
    // Every seq the child saw returned was persisted: the next one is new.
    expect(s.lastSeq).toBeGreaterThanOrEqual(printed);
    expect(readProvenance(s.stamp(sampleEvent(1)))?.seq).toBe(s.lastSeq);
    s.close(true);
  });
});
