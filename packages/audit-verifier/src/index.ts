// SPDX-License-Identifier: Apache-2.0
/*
 * Public API of @kubernaut/audit-verifier: the `kubernaut-audit` command as a function, and the
 * completeness analysis it runs, for programs that want the report rather than the command.
 * Explicit named exports only.
 */
export {
  type AnalyzeInput,
  analyze,
  type CrashWindow,
  type DeadLetterRecord,
  type ProducerReport,
  type ReplayRecord,
  type ServerChainResult,
  type StoredEvent,
  type Verdict,
  type VerifyReport,
} from './analyze.ts';
export {
  type CliIo,
  EXIT_EMPTY,
  EXIT_INCOMPLETE,
  EXIT_OK,
  EXIT_USAGE,
  main,
} from './cli/index.ts';
export {
  DataStorageReader,
  type DataStorageReaderOptions,
  RequestTimeoutError,
} from './client.ts';
export { formatReport } from './format.ts';
