// SPDX-License-Identifier: Apache-2.0
/* provenance/: seqs, the hash chain and crash declarations (invariants in ./stamper.ts). */
export {
  ProvenanceStamper,
  type ProvenanceStamperOptions,
  type ReservedSeq,
  type SpoolTail,
} from './stamper.ts';
export { STATE_FILE as PROVENANCE_STATE_FILE } from './state-file.ts';
