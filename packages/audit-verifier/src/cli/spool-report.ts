// SPDX-License-Identifier: Apache-2.0
/*
 * What `kubernaut-audit spool inspect` and `spool check` print: a spool scan
 * (@kubernaut/audit-spool-format, read only) as text or JSON. Pure formatting: no I/O here.
 */
import type { SpoolScan } from '@kubernaut/audit-spool-format';

/** Exit code of `spool check`: damaged regions found (or meta.json unreadable). */
export const EXIT_SPOOL_DAMAGED = 1;
/** Exit code of `spool inspect|check`: not a spool, unreadable, or a newer format. */
export const EXIT_NOT_A_SPOOL = 3;

export const EXIT_CODE_NOT_A_SPOOL: readonly [number, string] = [
  EXIT_NOT_A_SPOOL,
  'not a spool: the directory does not exist, cannot be read, holds no spool, or holds a newer format than this tool understands',
];

/** The scan as plain JSON (what `--json` prints), with the verdict of `check`. */
export function scanJson(scan: SpoolScan): Record<string, unknown> {
  return {
    directory: scan.directory,
    format: scan.format,
    status: scan.damaged.length > 0 ? 'damaged' : 'clean',
    ...(scan.format === 1 ? { note: 'format 1, migrated on next start' } : {}),
    destination: scan.meta?.destination ?? null,
    service: scan.meta?.service ?? null,
    producer_id: scan.meta?.producerId ?? null,
    created_at: scan.meta?.createdAt ?? null,
    lanes: scan.meta?.lanes ?? null,
    records: scan.records,
    bytes: scan.bytes,
    disk_bytes: scan.diskBytes,
    oldest_appended_at:
      scan.oldestAppendedAt === undefined ? null : new Date(scan.oldestAppendedAt).toISOString(),
    oldest_age_seconds: round(scan.oldestAgeSeconds),
    sent_not_acked: scan.sentNotAcked,
    missing: scan.missing,
    last_seq: scan.lastSeq,
    per_lane: scan.lanes,
    segments: scan.segments,
    damaged: scan.damaged,
    dead_letters: scan.deadLetters,
    lock: {
      ...scan.lock,
      owner: scan.lockOwner ?? null,
      ...(scan.fallbackLock !== undefined ? { fallback: scan.fallbackLock } : {}),
    },
    tmp_files: scan.tmpFiles,
    ...(scan.legacy !== undefined ? { legacy: scan.legacy } : {}),
  };
}

/** `spool inspect`'s text. */
export function inspectText(scan: SpoolScan): string {
  const rows: Array<[string, string]> = [];
  const meta = scan.meta;
  rows.push(['format', scan.format === 1 ? '1 (earlier version): migrated on next start' : '2']);
  if (scan.format === 1 && scan.legacy !== undefined) {
    rows.push([
      'format 1 files',
      `${scan.legacy.segments} segment(s), ${bytes(scan.legacy.bytes)}${scan.legacy.ackLog ? ', acks.log' : ''}${scan.legacy.lockFile ? `, lock (pid ${String(scan.legacy.lockOwner?.pid)} on ${String(scan.legacy.lockOwner?.hostname)})` : ''}`,
    ]);
  }
  rows.push([
    'destination',
    meta?.destination ?? (meta ? '(none yet: adopts the first one)' : '-'),
  ]);
  rows.push(['service', meta?.service ?? '-']);
  rows.push(['producer id', meta?.producerId ?? '-']);
  rows.push(['created', meta?.createdAt || '-']);
  rows.push(['lanes', meta ? String(meta.lanes) : '-']);
  rows.push([
    'records',
    `${scan.records} unacknowledged (${bytes(scan.bytes)} of frames; ${bytes(scan.diskBytes)} on disk in ${scan.segments.length} segment(s))`,
  ]);
  rows.push([
    'oldest',
    scan.oldestAppendedAt === undefined
      ? '-'
      : `${duration(scan.oldestAgeSeconds)} ago (${new Date(scan.oldestAppendedAt).toISOString()})`,
  ]);
  if (scan.format === 2) {
    // Format 1 keeps neither lanes nor SENT marks.
    rows.push([
      'sent, not acked',
      `${scan.sentNotAcked}${scan.sentNotAcked > 0 ? ' (sent again on restart: possible duplicates)' : ''}`,
    ]);
    if (scan.missing > 0) {
      rows.push([
        'lost',
        `${scan.missing} unacknowledged record(s) no intact frame holds any more`,
      ]);
    }
    const busy = scan.lanes.filter((l) => l.records > 0);
    rows.push([
      'per lane',
      busy.length === 0
        ? '-'
        : busy.map((l) => `${l.lane}: ${l.records} (${bytes(l.bytes)})`).join(', '),
    ]);
  }
  rows.push(['lock', lockText(scan)]);
  rows.push([
    'dead letters',
    scan.deadLetters.length === 0
      ? 'none'
      : scan.deadLetters
          .map(
            (d) =>
              `${d.file}: ${d.entries} entr${d.entries === 1 ? 'y' : 'ies'}, ${bytes(d.bytes)}`,
          )
          .join('; '),
  ]);
  if (scan.tmpFiles.length > 0) rows.push(['leftovers', `${scan.tmpFiles.join(', ')} (ignored)`]);
  rows.push(['damaged', damageSummary(scan)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return [
    `spool ${scan.directory}`,
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    ...damageLines(scan),
    '',
  ].join('\n');
}

/** `spool check`'s text. */
export function checkText(scan: SpoolScan): string {
  const what =
    scan.format === 1
      ? `format 1, migrated on next start; ${scan.records} unacknowledged record(s) in ${scan.segments.length} segment(s)`
      : `${scan.records} unacknowledged record(s) in ${scan.segments.length} segment(s)`;
  if (scan.damaged.length === 0) return `CLEAN: ${scan.directory}: ${what}, no damaged region\n`;
  return [
    `DAMAGED: ${scan.directory}: ${damageSummary(scan)}; ${what}`,
    ...damageLines(scan),
    'Records in damaged regions are skipped by recovery (counted in kubernaut.audit.spool.corrupted); the rest is delivered. Keep the directory: never delete a spool.',
    '',
  ].join('\n');
}

function damageSummary(scan: SpoolScan): string {
  if (scan.damaged.length === 0) return 'none';
  const total = scan.damaged.reduce((n, d) => n + d.length, 0);
  return `${scan.damaged.length} region(s), ${bytes(total)}`;
}

function damageLines(scan: SpoolScan): string[] {
  return scan.damaged.map((d) =>
    d.reason === 'missing'
      ? `    ${d.file} at offset ${d.offset}: ${d.events ?? 0} ${REASONS[d.reason]}`
      : `    ${d.file} at offset ${d.offset} (${d.length} bytes): ${REASONS[d.reason]}`,
  );
}

const REASONS: Record<SpoolScan['damaged'][number]['reason'], string> = {
  magic: 'no frame starts here (overwritten or garbage bytes)',
  checksum: 'a frame whose length or crc32 does not match (flipped bits)',
  sequence: 'an intact frame whose seqs go backwards or whose lane is out of range',
  index: 'an intact frame whose index points outside its body',
  torn_tail: 'a frame cut short by the end of the file (an interrupted write)',
  meta: 'meta.json cannot be read',
  payload: 'a format 1 record whose payload is not an audit event',
  missing:
    'unacknowledged events are gone from here, no bytes wrong (a segment cut at a frame boundary, emptied or removed)',
  oversized:
    'past the most a writer puts in this file (grown by damage or by hand): not read, as the spool does not read it',
};

function lockText(scan: SpoolScan): string {
  const o = scan.lockOwner;
  const owner =
    o === undefined
      ? ''
      : o.unreadable === true
        ? ' (lock.owner unreadable)'
        : ` (last owner per lock.owner: pid ${String(o.pid)} on ${String(o.hostname)}, since ${String(o.startedAt)})`;
  switch (scan.lock.state) {
    case 'held':
      return `HELD by a live process${owner}`;
    case 'free':
      return `free: no live owner${owner}`;
    case 'absent':
      return scan.fallbackLock !== undefined
        ? `lock.fallback present (pid ${String(scan.fallbackLock.pid)} on ${String(scan.fallbackLock.hostname)})`
        : 'no lock.db: never opened by a format 2 process';
    default:
      return `unknown (${scan.lock.reason})${owner}`;
  }
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
