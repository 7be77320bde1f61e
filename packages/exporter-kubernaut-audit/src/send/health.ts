// SPDX-License-Identifier: Apache-2.0
/*
 * DeliveryHealth: when DataStorage last accepted anything, shared by every lane (and, for the
 * standalone exporter, by every export). The deliverer reads it to tell "DataStorage is down or
 * rejects everything" (nothing accepted anywhere) from "this record fails" (others accepted
 * meanwhile). Times are the deliverer's clock (ms since the epoch). Lanes waiting for their next
 * retry are woken by the next acceptance (onNextAccepted): DataStorage is back.
 */
import type { DeliveryHealth } from './types.ts';

/** A DeliveryHealth in memory: the latest acceptance time reported. */
export function createDeliveryHealth(): DeliveryHealth {
  let last: number | undefined;
  let waiting = new Set<() => void>();
  return {
    lastAcceptedAt: () => last,
    accepted(now: number): void {
      if (last === undefined || now > last) last = now;
      if (waiting.size === 0) return;
      const wake = waiting;
      waiting = new Set();
      for (const w of wake) w();
    },
    onNextAccepted(listener: () => void): () => void {
      waiting.add(listener);
      return () => waiting.delete(listener);
    },
  };
}
