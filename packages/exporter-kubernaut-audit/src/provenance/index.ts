// SPDX-License-Identifier: Apache-2.0
/* The producer side of provenance (DESIGN §11): the stamper and its state file. */
export {
  ProvenanceStamper,
  type ProvenanceStamperOptions,
  type ReservedSeq,
} from './stamper.ts';
export { STATE_FILE as PROVENANCE_STATE_FILE } from './state-file.ts';
