// SPDX-License-Identifier: Apache-2.0
/*
 * The spool against a model (fast-check commands): random sequences of appends (one to three
 * lanes, small and large events, so that segments roll over and are deleted once acknowledged),
 * acknowledgements of random subsets, SENT marks, clean reopens and crashes (the directory's
 * files copied while the spool is open: what SIGKILL leaves, a new spool opened on them) must
 * always hand back exactly the events appended and not acknowledged: none lost, none twice,
 * none acknowledged, in seq order per lane.
 * A second model adds the volume failing under it (ENOSPC, EIO or EROFS on every write, or on
 * segment writes only, injected through the filesystem seam) and healing: while it fails,
 * appends are held in memory and nothing is lost; once healed and retried, reopens and crashes
 * hand back every event not acknowledged, and of the acknowledged ones at most those
 * acknowledged while the volume failed (their acknowledgement could not be written: sent again,
 * at least once).
 */
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Spool } from '../../src/spool/index.ts';
import { type FaultyFs, type FsErrorCode, faultyFs, WRITES } from './faulty-fs.ts';
import { allPending, events, spoolOpener } from './helpers.ts';

const open = spoolOpener();
const LANES = 3;
const OPTIONS = { lanes: LANES, segmentBytes: 64 * 1024 };

interface Model {
  pending: Set<number>;
  nextId: number;
}
interface Real {
  s: Spool;
  dir: string;
}

function check(m: Model, r: Real): void {
  const got = allPending(r.s).map(([, id]) => id);
  expect(new Set(got).size).toBe(got.length);
  expect([...got].sort((a, b) => a - b)).toEqual([...m.pending].sort((a, b) => a - b));
  // Per lane, ids come back in append order.
  for (let lane = 0; lane < LANES; lane++) {
    const ids = got.filter((id) => id % LANES === lane);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  }
}

/** Appends `n` events; `verify` checks the spool against the model afterwards. */
class Append<M extends Model, R extends Real> implements fc.Command<M, R> {
  readonly n: number;
  readonly size: number;
  readonly verify: (m: M, r: R) => void;
  constructor(n: number, size: number, verify: (m: M, r: R) => void) {
    this.n = n;
    this.size = size;
    this.verify = verify;
  }
  check = () => true;
  run(m: M, r: R): void {
    const out = r.s.append(events(m.nextId, m.nextId + this.n, LANES, this.size));
    expect(out.dropped).toEqual([]); // far below every bound
    for (let id = m.nextId; id < m.nextId + this.n; id++) m.pending.add(id);
    m.nextId += this.n;
    this.verify(m, r);
  }
  toString = () => `append(${this.n}, ${this.size})`;
}

/** Acknowledges a random subset of what is pending; `onAcked` sees each event acknowledged. */
class Ack<M extends Model, R extends Real> implements fc.Command<M, R> {
  readonly pick: number[];
  readonly verify: (m: M, r: R) => void;
  readonly onAcked: ((m: M, id: number) => void) | undefined;
  constructor(pick: number[], verify: (m: M, r: R) => void, onAcked?: (m: M, id: number) => void) {
    this.pick = pick;
    this.verify = verify;
    this.onAcked = onAcked;
  }
  check = (m: Readonly<M>) => m.pending.size > 0;
  run(m: M, r: R): void {
    const pending = allPending(r.s);
    const chosen = new Set(this.pick.map((p) => pending[p % pending.length] as [number, number]));
    const seqs = [...chosen].map(([seq]) => seq).sort((a, b) => a - b);
    const ranges: Array<{ from: number; to: number }> = [];
    for (const q of seqs) {
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last.to + 1 === q) last.to = q;
      else ranges.push({ from: q, to: q });
    }
    r.s.ack(ranges);
    for (const [, id] of chosen) {
      m.pending.delete(id);
      this.onAcked?.(m, id);
    }
    this.verify(m, r);
  }
  toString = () => `ack(${this.pick.length})`;
}

class MarkSent implements fc.Command<Model, Real> {
  readonly count: number;
  constructor(count: number) {
    this.count = count;
  }
  check = (m: Readonly<Model>) => m.pending.size > 0;
  run(m: Model, r: Real): void {
    const seqs = allPending(r.s)
      .slice(0, this.count)
      .map(([seq]) => seq);
    r.s.markSent(seqs.map((q) => ({ from: q, to: q })));
    check(m, r);
  }
  toString = () => `markSent(${this.count})`;
}

class Reopen implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real): void {
    r.s.close();
    r.s = open(r.dir, OPTIONS);
    expect(r.s.kind).toBe('file');
    check(m, r);
  }
  toString = () => 'reopen';
}

class Crash implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real): void {
    const copy = join(tempDir(), 'after-kill');
    cpSync(r.dir, copy, { recursive: true });
    r.s.close();
    r.dir = copy;
    r.s = open(copy, OPTIONS);
    expect(r.s.kind).toBe('file');
    expect(r.s.stats().corrupted).toBe(0);
    check(m, r);
  }
  toString = () => 'crash';
}

describe('the spool against a model', () => {
  it('hands back exactly what was appended and not acknowledged, through reopens and crashes', () => {
    // fc.commands picks among these alike: appends are listed more often so that spools grow,
    // roll over into new segments and keep a backlog across reopens and crashes.
    const append = fc
      .tuple(fc.integer({ min: 1, max: 80 }), fc.constantFrom(150, 600, 3000))
      .map(([n, size]) => new Append<Model, Real>(n, size, check));
    const ack = fc
      .array(fc.nat(), { minLength: 1, maxLength: 30 })
      .map((p) => new Ack<Model, Real>(p, check));
    const commands = [
      append,
      append,
      append,
      append,
      ack,
      ack,
      fc.integer({ min: 1, max: 50 }).map((n) => new MarkSent(n)),
      fc.constant(new Reopen()),
      fc.constant(new Crash()),
    ];
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
        const dir = tempDir();
        const real: Real = { s: open(dir, OPTIONS), dir };
        fc.modelRun(() => ({ model: { pending: new Set<number>(), nextId: 0 }, real }), cmds);
        real.s.close();
        expect(readdirSync(real.dir).length).toBeGreaterThan(0);
      }),
      { numRuns: 100 },
    );
  });
});

interface FaultModel extends Model {
  /** Acknowledged while the volume failed: may come back after a reopen or a crash. */
  unsure: Set<number>;
  failing: boolean;
}
interface FaultReal extends Real {
  fs: FaultyFs;
}

/** Exactly the model's pending events; after a reopen, also some of the unsure ones (kept). */
function checkFaulted(m: FaultModel, r: FaultReal, reopened: boolean): void {
  const got = allPending(r.s).map(([, id]) => id);
  expect(new Set(got).size).toBe(got.length);
  for (const id of m.pending) expect(got).toContain(id);
  for (const id of got) {
    if (m.pending.has(id)) continue;
    expect(reopened && m.unsure.has(id), `event ${id} came back`).toBe(true);
    m.pending.add(id); // at least once: it is pending again
  }
  for (let lane = 0; lane < LANES; lane++) {
    const ids = got.filter((id) => id % LANES === lane);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  }
}

const faultOps = (which: 'all' | 'segments') =>
  which === 'all' ? { ops: WRITES } : { ops: ['writeSync', 'write'] as const, path: /\.kaf$/ };

/** The second model's check after a command that reopens nothing. */
const checkRunning = (m: FaultModel, r: FaultReal) => checkFaulted(m, r, false);
/** An acknowledgement made while the volume fails may not be written. */
const noteUnsure = (m: FaultModel, id: number) => {
  if (m.failing) m.unsure.add(id);
};

class Fail implements fc.Command<FaultModel, FaultReal> {
  readonly code: FsErrorCode;
  readonly which: 'all' | 'segments';
  constructor(code: FsErrorCode, which: 'all' | 'segments') {
    this.code = code;
    this.which = which;
  }
  check = () => true;
  run(m: FaultModel, r: FaultReal): void {
    r.fs.fail({ code: this.code, ...faultOps(this.which) });
    m.failing = true;
    checkFaulted(m, r, false);
  }
  toString = () => `fail(${this.code}, ${this.which})`;
}

class Heal implements fc.Command<FaultModel, FaultReal> {
  check = (m: Readonly<FaultModel>) => m.failing;
  run(m: FaultModel, r: FaultReal): void {
    r.fs.heal();
    r.s.retryNow();
    m.failing = false;
    expect(r.s.holdsUnwritten).toBe(false);
    checkFaulted(m, r, false);
  }
  toString = () => 'heal';
}

/** A clean reopen, or a crash (the files copied while open), once the volume works again. */
class FaultRestart implements fc.Command<FaultModel, FaultReal> {
  readonly crash: boolean;
  constructor(crash: boolean) {
    this.crash = crash;
  }
  check = (m: Readonly<FaultModel>) => !m.failing;
  run(m: FaultModel, r: FaultReal): void {
    let dir = r.dir;
    if (this.crash) {
      dir = join(tempDir(), 'after-kill');
      cpSync(r.dir, dir, { recursive: true });
    }
    r.s.close();
    r.dir = dir;
    r.fs = faultyFs();
    r.s = open(dir, { ...OPTIONS, fs: r.fs });
    expect(r.s.kind).toBe('file');
    expect(r.s.stats().corrupted).toBe(0);
    checkFaulted(m, r, true);
  }
  toString = () => (this.crash ? 'crash' : 'reopen');
}

describe('the spool against a model, on a volume that fails and heals', () => {
  it('loses nothing while writes fail, and after healing hands back every event not acknowledged', () => {
    const append = fc
      .tuple(fc.integer({ min: 1, max: 60 }), fc.constantFrom(150, 600, 3000))
      .map(([n, size]) => new Append<FaultModel, FaultReal>(n, size, checkRunning));
    const ack = fc
      .array(fc.nat(), { minLength: 1, maxLength: 30 })
      .map((p) => new Ack<FaultModel, FaultReal>(p, checkRunning, noteUnsure));
    const commands = [
      append,
      append,
      append,
      ack,
      ack,
      fc
        .tuple(
          fc.constantFrom<FsErrorCode>('ENOSPC', 'EIO', 'EROFS'),
          fc.constantFrom<'all' | 'segments'>('all', 'segments'),
        )
        .map(([code, which]) => new Fail(code, which)),
      fc.constant(new Heal()),
      fc.constant(new Heal()),
      fc.boolean().map((crash) => new FaultRestart(crash)),
    ];
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
        const dir = tempDir();
        const fs = faultyFs();
        const real: FaultReal = { s: open(dir, { ...OPTIONS, fs }), dir, fs };
        fc.modelRun(
          () => ({
            model: {
              pending: new Set<number>(),
              nextId: 0,
              unsure: new Set<number>(),
              failing: false,
            },
            real,
          }),
          cmds,
        );
        real.fs.heal();
        real.s.close();
      }),
      { numRuns: 150 },
    );
  });
});
