/*
 * @kubernaut/exporter-kubernaut-audit/experimental: internals that other packages of this
 * repository build on (the audit OTLP bridge, the verifier's tests, the benchmarks).
 *
 * @experimental Unstable: these names and signatures may change in any release, without notice
 * and without a major version. Applications use the main entry.
 */
export {
  PROVENANCE_STATE_FILE,
  ProvenanceStamper,
  type ProvenanceStamperOptions,
  type ReservedSeq,
} from './provenance/index.ts';
