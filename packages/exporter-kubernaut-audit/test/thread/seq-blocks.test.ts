// SPDX-License-Identifier: Apache-2.0
/*
 * SeqBlocks (src/thread/seq-blocks.ts): seqs at emit from blocks published in shared memory by
 * another thread — a real worker thread here, publishing the way the delivery thread does.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SeqBlocks } from '../../src/thread/seq-blocks.ts';

/** A thread that publishes a block of `size` seqs from `start` on each message (and once at once). */
function publisher(control: Int32Array, block: Float64Array, size: number, start: number) {
  return new Worker(
    `const { parentPort, workerData: w } = require('node:worker_threads');
     let next = w.start;
     const publish = () => {
       w.block[0] = next; w.block[1] = next + w.size - 1; next += w.size;
       Atomics.add(w.control, 1, 1); Atomics.notify(w.control, 1);
     };
     publish();
     parentPort.on('message', (m) => (m === 'stop' ? parentPort.close() : publish()));`,
    { eval: true, workerData: { control, block, size, start } },
  );
}

describe('SeqBlocks', () => {
  it('hands out every seq once, in order, across blocks; waits for the first; asks at half a block', () => {
    const control = new Int32Array(new SharedArrayBuffer(8));
    const block = new Float64Array(new SharedArrayBuffer(16));
    const worker = publisher(control, block, 16, 501);
    let asks = 0;
    const seqs = new SeqBlocks({
      memory: { control, block },
      size: 16,
      ask: () => {
        asks++;
        worker.postMessage('more');
      },
      waitMillis: 10_000,
      failed: () => false,
      onGiveUp: () => {
        throw new Error('gave up');
      },
    });
    const got = Array.from({ length: 100 }, () => seqs.next());
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => 501 + i));
    expect(seqs.lastUsed).toBe(600);
    expect(asks).toBeGreaterThanOrEqual(6);
    worker.postMessage('stop');
  });

  it('gives up after waitMillis without a block: 0 from then on, and says so once', () => {
    const control = new Int32Array(new SharedArrayBuffer(8));
    const block = new Float64Array(new SharedArrayBuffer(16));
    let said = 0;
    const seqs = new SeqBlocks({
      memory: { control, block },
      size: 16,
      ask: () => undefined,
      waitMillis: 50,
      failed: () => false,
      onGiveUp: (failed) => {
        expect(failed).toBe(false);
        said++;
      },
    });
    expect([seqs.next(), seqs.next()]).toEqual([0, 0]);
    expect(said).toBe(1);
    expect(seqs.lastUsed).toBe(0);
  });

  it('gives up at once, not after waitMillis, when the delivery thread says it could not start', () => {
    const control = new Int32Array(new SharedArrayBuffer(12));
    const block = new Float64Array(new SharedArrayBuffer(16));
    const reasons: boolean[] = [];
    const seqs = new SeqBlocks({
      memory: { control, block },
      size: 16,
      ask: () => undefined,
      // A wait this long would time the test out: only the failure flag can end it.
      waitMillis: 600_000,
      failed: () => Atomics.load(control, 2) !== 0,
      onGiveUp: (failed) => void reasons.push(failed),
    });
    Atomics.store(control, 2, 1);
    expect(seqs.next()).toBe(0);
    expect(reasons).toEqual([true]);
  });
});
