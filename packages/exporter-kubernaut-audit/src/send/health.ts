// SPDX-License-Identifier: Apache-2.0
/*
 * DeliveryHealth: when DataStorage last accepted anything, shared by every lane (and, for the
 * standalone exporter, by every export). The deliverer reads it to tell "DataStorage is down or
 * rejects everything" (nothing accepted anywhere) from "this record fails" (others accepted
 * meanwhile). Times are the deliverer's clock (ms since the epoch).
 */
import type { DeliveryHealth } from './types.ts';

/** A DeliveryHealth in memory: the latest acceptance time reported. */
export function createDeliveryHealth(): DeliveryHealth {
  let last: number | undefined;
  return {
    lastAcceptedAt: () => last,
    accepted(now: number): void {
      if (last === undefined || now > last) last = now;
    },
  };
}
