// SPDX-License-Identifier: Apache-2.0
/*
 * Leftover default spools (DESIGN §6). Without a configured directory a processor takes the
 * default `<os tmpdir>/kubernaut-audit/<service>-<hash of the destination>`, or the next free
 * `…-2`, `…-3` … when a live process holds it (spool/choose.ts): a cluster of N workers uses N
 * of them. When fewer processes run later (the cluster scaled down, a second copy of a program
 * run once), a directory whose process is gone keeps its records until some process takes that
 * directory again, which may be never. A processor on a default directory therefore delivers
 * such leftovers itself.
 *
 * Invariants:
 * - Only the default directories of the processor's own service and destination (`…-<n>`,
 *   n ≤ MAX_DEFAULT_DIRECTORIES), never its own and never a configured one; only one whose
 *   kernel lock is free (its owner is dead): a live owner's directory is never opened.
 * - Only while the processor's own spool has no backlog: it is empty, or DataStorage keeps up
 *   with it (it accepted records in the last BACKLOG_MILLIS and none of the spool's has waited
 *   longer). A process with a backlog of its own (an outage) does not take more directories, so
 *   that processes starting meanwhile still find theirs free.
 * - One leftover at a time, opened as a spool of its own (its lock taken, its recovery run) and
 *   delivered by a sender of its own through the processor's deliverer (so accepted, rejected
 *   and dead-lettered as the processor's own records are). It is closed, its lock released, as
 *   soon as it is empty; also when it made no progress since the last check (DataStorage down or
 *   refusing: what is left stays there, tried again later, at growing intervals up to
 *   MAX_BACKOFF_MILLIS), and at shutdown (what is left stays there).
 * - Records left for another DataStorage are never sent here (a spool belongs to one
 *   destination). But a service whose DataStorage URL changed (even only its spelling) gets new
 *   default directories, and the old ones would wait unseen: at the first check, each default
 *   directory of the service for another destination that no live process holds and that
 *   holds records is reported once (diag warning: where, for which DataStorage, how many, and
 *   how to deliver them).
 * - Checked `checkMillis` after start and then every `checkMillis`; timers are unref'd. Nothing
 *   throws; a directory that cannot be read is skipped. A directory found empty is not opened
 *   again until its files change (a spool keeps its last segment when every record in it is
 *   acknowledged, and opening one reads it).
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LEGACY_SEGMENT_NAME, probeKernelLock, SEGMENT_NAME } from '@kubernaut/audit-spool-format';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { defaultSpoolDirectory } from '../config/processor-env.ts';
import type { DiagLevel } from '../measure/diag.ts';
import { AuditSender, type AuditSenderOptions } from '../send/sender.ts';
import { MAX_DEFAULT_DIRECTORIES } from '../spool/choose.ts';
import { openSpool, type Spool } from '../spool/spool.ts';

/** How often leftovers are looked for, by default (ms). */
export const DEFAULT_LEFTOVER_CHECK_MILLIS = 30_000;
/** The longest wait before a leftover that made no progress is tried again (ms). */
const MAX_BACKOFF_MILLIS = 15 * 60_000;
/** A spool whose oldest record waited longer, or to which nothing was accepted for longer, has a backlog (ms). */
export const BACKLOG_MILLIS = 10_000;

/**
 * True when a spool holding `records`, the oldest appended at `oldestAppendedAt`, has a backlog:
 * it holds records and DataStorage is not keeping up with them (see BACKLOG_MILLIS). Times in ms
 * since the epoch.
 */
export function hasBacklog(
  spool: { records: number; oldestAppendedAt: number | undefined },
  lastAcceptedAt: number | undefined,
  now: number,
): boolean {
  if (spool.records === 0) return false;
  if (spool.oldestAppendedAt !== undefined && now - spool.oldestAppendedAt > BACKLOG_MILLIS) {
    return true;
  }
  return lastAcceptedAt === undefined || now - lastAcceptedAt > BACKLOG_MILLIS;
}

export interface LeftoversOptions {
  /** The processor's own spool directory (undefined while it has none: nothing is taken). */
  ownDirectory(): string | undefined;
  serviceName: string | undefined;
  destination: string | undefined;
  deliverer: AuditSenderOptions['deliverer'];
  /** The processor's own spool now. */
  ownSpool(): { records: number; oldestAppendedAt: number | undefined };
  /** When DataStorage last accepted records of the processor's own spool (ms since the epoch). */
  lastAcceptedAt(): number | undefined;
  report(level: DiagLevel, kind: string, count: number, detail?: string): void;
  /** [DEFAULT_LEFTOVER_CHECK_MILLIS] */
  checkMillis?: number;
  /** Called after each check (tests). */
  onChecked?: () => void;
}

interface Adopted {
  directory: string;
  spool: Spool;
  sender: AuditSender;
  /** Records it held at the last check. */
  records: number;
  /** Records it held when taken. */
  taken: number;
}

export class LeftoverSpools {
  private readonly _o: LeftoversOptions;
  private readonly _every: number;
  private _timer: NodeJS.Timeout | undefined;
  private _current: Adopted | undefined;
  private _stopped = false;
  /** Earliest time (performance.now: a clock step does not move it) the next leftover may be taken, after one made no progress. */
  private _notBefore = 0;
  private _backoff: number;
  /** Directories found empty, with their files' signature then. */
  private readonly _empty = new Map<string, string>();
  private _othersReported = false;

  constructor(options: LeftoversOptions) {
    this._o = options;
    const every = options.checkMillis;
    this._every =
      typeof every === 'number' && every > 0 ? Math.floor(every) : DEFAULT_LEFTOVER_CHECK_MILLIS;
    this._backoff = this._every;
    this._schedule();
  }

  /** Stops: a leftover being delivered is closed (what it still holds stays there). */
  async stop(): Promise<void> {
    this._stopped = true;
    if (this._timer !== undefined) clearTimeout(this._timer);
    this._timer = undefined;
    await this._release();
  }

  private _schedule(): void {
    if (this._stopped || this._timer !== undefined) return;
    this._timer = setTimeout(() => {
      this._timer = undefined;
      void this._check().finally(() => {
        this._o.onChecked?.();
        this._schedule();
      });
    }, this._every);
    this._timer.unref();
  }

  private async _check(): Promise<void> {
    try {
      if (!this._othersReported) {
        this._othersReported = true;
        this._reportOtherDestinations();
      }
      const cur = this._current;
      if (cur !== undefined) {
        const left = cur.spool.stats().records;
        if (left === 0) {
          await this._done(cur);
        } else if (left >= cur.records) {
          // No progress (DataStorage down or refusing): let the directory go, try again later.
          await this._release();
          this._notBefore = performance.now() + this._backoff;
          this._backoff = Math.min(MAX_BACKOFF_MILLIS, this._backoff * 2);
          return;
        } else {
          cur.records = left;
          return;
        }
      }
      if (this._stopped || performance.now() < this._notBefore) return;
      if (hasBacklog(this._o.ownSpool(), this._o.lastAcceptedAt(), Date.now())) return;
      if (this._o.ownDirectory() === undefined) return;
      this._take();
    } catch (err) {
      this._o.report('warn', 'errors delivering leftover spools', 1, errorText(err));
    }
  }

  /** Takes the first leftover that holds records (see the invariants). */
  private _take(): void {
    const o = this._o;
    for (let n = 1; n <= MAX_DEFAULT_DIRECTORIES && !this._stopped; n++) {
      const directory = defaultSpoolDirectory(o.serviceName, o.destination, n);
      if (directory === o.ownDirectory()) continue;
      const files = signature(directory);
      if (files === undefined || this._empty.get(directory) === files) continue;
      if (probeKernelLock(directory).state === 'held') continue;
      let spool: Spool | undefined;
      try {
        spool = openSpool({
          directory,
          destination: o.destination,
          service: o.serviceName,
          onUnavailable: () => undefined, // taken meanwhile: skipped below, no warning
        });
        if (spool.kind !== 'file') {
          spool.close(); // taken meanwhile
          continue;
        }
        const records = spool.stats().records;
        if (records === 0) {
          spool.close();
          const after = signature(directory);
          if (after !== undefined) this._empty.set(directory, after);
          continue;
        }
        const taken = spool;
        const sender = new AuditSender({
          spool,
          deliverer: o.deliverer,
          deferMetrics: true,
          // Let it go as soon as it is empty (outside the sender's own call).
          onSettled: () => {
            const cur = this._current;
            if (cur?.spool === taken && taken.stats().records === 0) {
              setImmediate(() => void this._done(cur));
            }
          },
        });
        this._current = { directory, spool, sender, records, taken: records };
        o.report(
          'info',
          'audit records an earlier process left, being delivered',
          records,
          `from ${directory}, whose process is gone`,
        );
        sender.start();
        return;
      } catch (err) {
        this._unreadable(directory, spool, err);
      }
    }
  }

  /** Reports the service's default directories for other DataStorages that hold records. */
  private _reportOtherDestinations(): void {
    const o = this._o;
    const ours = defaultSpoolDirectory(o.serviceName, o.destination, 1);
    const parent = dirname(ours);
    const name = basename(ours); // `<service>-<8 hex digits>`
    const service = name.slice(0, -9);
    const hash = name.slice(-8);
    let entries: string[];
    try {
      entries = readdirSync(parent);
    } catch {
      return;
    }
    for (const entry of entries) {
      if (this._stopped) return;
      if (!entry.startsWith(`${service}-`)) continue;
      const m = /^([0-9a-f]{8})(?:-\d+)?$/.exec(entry.slice(service.length + 1));
      if (m === null || m[1] === hash) continue;
      const directory = join(parent, entry);
      if (signature(directory) === undefined) continue;
      if (probeKernelLock(directory).state === 'held') continue; // a live process of its own
      let spool: Spool | undefined;
      try {
        spool = openSpool({ directory, onUnavailable: () => undefined });
        const records = spool.kind === 'file' ? spool.stats().records : 0;
        const { destination, service: owner } = spool.meta;
        spool.close();
        spool = undefined;
        // Another service's whose name only starts like ours: not ours to report.
        if (records === 0 || (owner !== undefined && owner !== o.serviceName)) continue;
        o.report(
          'warn',
          'audit records waiting in a spool for another DataStorage',
          records,
          `${directory} holds them for ${destination ?? 'an unrecorded DataStorage'}, not for ${o.destination ?? 'this exporter'}: only a process whose exporter sends there delivers them (set its KUBERNAUT_AUDIT_SPOOL_DIR to that directory; \`kubernaut-audit spool inspect\` shows what it holds)`,
        );
      } catch (err) {
        this._unreadable(directory, spool, err);
      }
    }
  }

  /** A directory that could not be read: `spool` (if it opened) closed, reported. */
  private _unreadable(directory: string, spool: Spool | undefined, err: unknown): void {
    try {
      spool?.close();
    } catch {
      // reported below
    }
    this._o.report(
      'warn',
      'leftover spools that cannot be read',
      1,
      `${directory}: ${errorText(err)}`,
    );
  }

  /** `cur` is empty: released, reported; the next leftover may be taken at once. */
  private async _done(cur: Adopted): Promise<void> {
    if (this._current !== cur) return;
    await this._release();
    const after = signature(cur.directory);
    if (after !== undefined) this._empty.set(cur.directory, after);
    this._backoff = this._every;
    this._notBefore = 0;
    this._o.report(
      'info',
      'audit records an earlier process left delivered',
      cur.taken,
      `from ${cur.directory}, which is free again`,
    );
  }

  private async _release(): Promise<void> {
    const cur = this._current;
    if (cur === undefined) return;
    this._current = undefined;
    try {
      await cur.sender.stop();
    } finally {
      cur.spool.close();
    }
  }
}

/**
 * The names, sizes and modification times of the files in `directory`; undefined when it holds
 * no spool segment or cannot be read.
 */
function signature(directory: string): string | undefined {
  try {
    const names = readdirSync(directory).sort();
    if (!names.some((n) => SEGMENT_NAME.test(n) || LEGACY_SEGMENT_NAME.test(n))) return undefined;
    return names
      .map((n) => {
        const st = statSync(join(directory, n), { throwIfNoEntry: false });
        return `${n}:${st?.size ?? -1}:${st?.mtimeMs ?? -1}`;
      })
      .join('/');
  } catch {
    return undefined;
  }
}
