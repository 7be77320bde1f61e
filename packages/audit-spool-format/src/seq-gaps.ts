// SPDX-License-Identifier: Apache-2.0
/*
 * Events gone from a spool without a damaged frame to show for it.
 *
 * Disk seqs are given out one after the other to the frames written to disk (FORMAT.md), so a
 * seq between the first segment's base and the highest seq known to have been given out (below
 * the last segment's base, in an intact frame, or in a SENT range) that no intact frame holds
 * and no ACK range covers was an unacknowledged event that is gone: a segment truncated at a
 * frame boundary or emptied, a segment file removed, damage. Pure; shared by recovery and the
 * read-only scan, so that both judge a spool alike.
 */

/** A run of seqs no intact frame holds and no ACK range covers. */
export interface MissingRun {
  from: number;
  to: number;
  /** The last seq of the intact frame before the run (0: none). */
  afterFrame: number;
}

export interface SeqGapInput {
  /**
   * The segments' bases, ascending: the seqs from the first on, and below the last, were given
   * out; a run is split where a segment starts, so that each run lies in one segment.
   */
  bases: readonly number[];
  /** Intact frames: [first seq, last seq], in any order. */
  frames: ReadonlyArray<readonly [number, number]>;
  acked: ReadonlyArray<readonly [number, number]>;
  sent: ReadonlyArray<readonly [number, number]>;
}

/** The runs of missing seqs (see the module comment), in seq order. */
export function missingSeqRuns(input: SeqGapInput): MissingRun[] {
  const bases = input.bases;
  let from = bases[0] ?? Number.POSITIVE_INFINITY;
  let to = Math.max((bases[bases.length - 1] ?? 0) - 1, 0);
  for (const [, b] of input.frames) to = Math.max(to, b);
  for (const [a, b] of input.sent) {
    from = Math.min(from, a);
    to = Math.max(to, b);
  }
  const runs: MissingRun[] = [];
  if (!(from <= to)) return runs;
  const push = (a: number, b: number, afterFrame: number) => {
    for (const base of bases) {
      if (base > a && base <= b) {
        runs.push({ from: a, to: base - 1, afterFrame });
        a = base;
      }
    }
    runs.push({ from: a, to: b, afterFrame });
  };
  const covered: Array<[number, number, boolean]> = [];
  for (const [a, b] of input.frames) covered.push([a, b, true]);
  for (const [a, b] of input.acked) covered.push([a, b, false]);
  covered.sort((x, y) => x[0] - y[0]);
  let next = from; // the lowest seq not known to be covered
  let afterFrame = 0;
  for (const [a, b, isFrame] of covered) {
    if (a > to) break;
    if (a > next) push(next, Math.min(a - 1, to), afterFrame);
    if (b + 1 > next) next = b + 1;
    if (isFrame && b > afterFrame) afterFrame = b;
    if (next > to) break;
  }
  if (next <= to) push(next, to, afterFrame);
  return runs;
}
