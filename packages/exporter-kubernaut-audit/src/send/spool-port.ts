// SPDX-License-Identifier: Apache-2.0
/* The spool as the sender sees it: the spool half's interface (`../spool/types.ts`). */
export type {
  AppendOutcome,
  AuditSpool,
  EncodedEvent,
  Frame,
  Reservation,
  SeqRange,
  SpoolMeta,
  SpoolStats,
} from '../spool/types.ts';
