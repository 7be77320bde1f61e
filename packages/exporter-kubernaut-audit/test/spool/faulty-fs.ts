// SPDX-License-Identifier: Apache-2.0
/*
 * Fault injection through the spool's filesystem seam: a SpoolFs over the real filesystem whose
 * calls fail with ENOSPC, EIO or EROFS while a rule says so (a full volume, a failing disk, a
 * read-only mount), then work again when the rule is lifted.
 */
import type { SpoolFs } from '../../src/spool/fs.ts';
import { nodeFs } from '../../src/spool/fs.ts';

export type FsOp = keyof SpoolFs;
export type FsErrorCode = 'ENOSPC' | 'EIO' | 'EROFS' | 'EACCES';

export interface FaultRule {
  /** Calls that fail. */
  ops: readonly FsOp[];
  code: FsErrorCode;
  /** Only calls whose path (or the fd's path) matches. */
  path?: RegExp;
  /** Only for opens with a writing flag (a read-only mount still reads). */
  writesOnly?: boolean;
}

export interface FaultyFs extends SpoolFs {
  /** Makes the matching calls fail from now on. */
  fail(rule: FaultRule): void;
  /** Lifts every rule. */
  heal(): void;
  /** Failed calls so far, by op. */
  readonly failures: Map<string, number>;
}

const WRITE_OPS: readonly FsOp[] = [
  'writeSync',
  'write',
  'fdatasyncSync',
  'fsyncSync',
  'ftruncateSync',
  'renameSync',
  'unlinkSync',
  'unlink',
  'mkdirSync',
];

/** All writing calls of the seam (what a full or read-only volume refuses). */
export const WRITES: readonly FsOp[] = [...WRITE_OPS, 'openSync'];

export function faultyFs(base: SpoolFs = nodeFs): FaultyFs {
  const rules: FaultRule[] = [];
  const fdPath = new Map<number, string>();
  const failures = new Map<string, number>();
  // ENOSPC refuses to create files but opens existing ones for writing; EROFS refuses both.
  const onlyCreation = () => rules.some((r) => r.ops.includes('openSync') && r.code === 'ENOSPC');
  const check = (op: FsOp, path: string | undefined, writing: boolean) => {
    for (const r of rules) {
      // A rule for writeSync also refuses the same write made on the thread pool.
      if (!r.ops.includes(op) && !(op === 'write' && r.ops.includes('writeSync'))) continue;
      if (r.path !== undefined && (path === undefined || !r.path.test(path))) continue;
      if (op === 'openSync' && r.writesOnly !== false && !writing) continue;
      failures.set(op, (failures.get(op) ?? 0) + 1);
      throw Object.assign(new Error(`${r.code}: injected on ${op} ${path ?? ''}`), {
        code: r.code,
      });
    }
  };
  const fs: FaultyFs = {
    failures,
    fail: (rule) => rules.push(rule),
    heal: () => {
      rules.length = 0;
    },
    openSync(path, flags, mode) {
      // A full volume still opens existing files; it cannot create new ones.
      const creating =
        (flags !== 'r' && !(flags.startsWith('r') || flags.startsWith('a'))) || !base.exists(path);
      check('openSync', path, flags !== 'r' && (creating || !onlyCreation()));
      const fd = base.openSync(path, flags, mode);
      fdPath.set(fd, path);
      return fd;
    },
    closeSync(fd) {
      fdPath.delete(fd);
      base.closeSync(fd);
    },
    readSync(fd, buf, offset, length, position) {
      check('readSync', fdPath.get(fd), false);
      return base.readSync(fd, buf, offset, length, position);
    },
    writeSync(fd, buf, offset, length, position) {
      check('writeSync', fdPath.get(fd), true);
      return base.writeSync(fd, buf, offset, length, position);
    },
    write(fd, buf, offset, length, position, cb) {
      try {
        check('write', fdPath.get(fd), true);
      } catch (err) {
        setImmediate(() => cb(err as NodeJS.ErrnoException, 0));
        return;
      }
      base.write(fd, buf, offset, length, position, cb);
    },
    fdatasyncSync(fd) {
      check('fdatasyncSync', fdPath.get(fd), true);
      base.fdatasyncSync(fd);
    },
    fdatasync(fd, cb) {
      try {
        check('fdatasync', fdPath.get(fd), true);
      } catch (err) {
        setImmediate(() => cb(err as Error));
        return;
      }
      base.fdatasync(fd, cb);
    },
    fsyncSync(fd) {
      check('fsyncSync', fdPath.get(fd), true);
      base.fsyncSync(fd);
    },
    ftruncateSync(fd, length) {
      check('ftruncateSync', fdPath.get(fd), true);
      base.ftruncateSync(fd, length);
    },
    fstatSync: (fd) => base.fstatSync(fd),
    renameSync(from, to) {
      check('renameSync', to, true);
      base.renameSync(from, to);
    },
    unlinkSync(path) {
      check('unlinkSync', path, true);
      base.unlinkSync(path);
    },
    unlink(path, cb) {
      try {
        check('unlink', path, true);
      } catch (err) {
        setImmediate(() => cb(err as NodeJS.ErrnoException));
        return;
      }
      base.unlink(path, cb);
    },
    readdirSync(path) {
      check('readdirSync', path, false);
      return base.readdirSync(path);
    },
    statSync: (path) => base.statSync(path),
    mkdirSync(path, mode) {
      if (base.exists(path)) return base.mkdirSync(path, mode); // EEXIST, as on any volume
      check('mkdirSync', path, true);
      base.mkdirSync(path, mode);
    },
    readFileSync(path) {
      check('readFileSync', path, false);
      return base.readFileSync(path);
    },
    realpathSync: (path) => base.realpathSync(path),
    exists: (path) => base.exists(path),
  };
  return fs;
}
