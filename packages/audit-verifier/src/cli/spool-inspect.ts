// SPDX-License-Identifier: Apache-2.0
/* `kubernaut-audit spool inspect DIR`: what a spool holds and who owns it, read only. */
import { SpoolReadError, scanSpool } from '@kubernaut/audit-spool-format';
import { defineCommand, EXIT_CODE_USAGE, EXIT_OK, UsageError } from './command.ts';
import { EXIT_CODE_NOT_A_SPOOL, EXIT_NOT_A_SPOOL, inspectText, scanJson } from './spool-report.ts';

export const spoolInspectCommand = defineCommand({
  name: 'spool inspect',
  summary:
    'what a spool holds (records, bytes, oldest age, destination, lock holder, damage), read only',
  synopsis: ['DIR [--json]'],
  options: { json: { type: 'boolean' } },
  optionHelp: [
    ['DIR', 'the spool directory (read only: nothing is written, the lock is never taken)'],
    ['--json', 'the report as JSON'],
  ],
  positionals: { name: 'DIR', max: 1 },
  exitCodes: [
    [EXIT_OK, 'inspected (damaged regions are listed; `spool check` judges them)'],
    EXIT_CODE_USAGE,
    EXIT_CODE_NOT_A_SPOOL,
  ],
  run({ values, positionals }, { io, now }) {
    const dir = positionals[0];
    if (dir === undefined) throw new UsageError('which directory? (spool inspect DIR)');
    return runScan(dir, now, Boolean(values.json), io, (scan) => {
      io.stdout(values.json ? `${JSON.stringify(scanJson(scan), null, 2)}\n` : inspectText(scan));
      return EXIT_OK;
    });
  },
});

/** Scans `dir`; a directory that is no spool is reported (stderr, and as JSON) with its code. */
export function runScan(
  dir: string,
  now: number,
  json: boolean,
  io: { stdout: (t: string) => void; stderr: (t: string) => void },
  report: (scan: ReturnType<typeof scanSpool>) => number,
): number {
  let scan: ReturnType<typeof scanSpool>;
  try {
    scan = scanSpool(dir, { now });
  } catch (err) {
    if (!(err instanceof SpoolReadError)) throw err;
    if (json) {
      io.stdout(
        `${JSON.stringify({ directory: dir, status: 'not_a_spool', code: err.code, message: err.message }, null, 2)}\n`,
      );
    }
    io.stderr(`kubernaut-audit: ${err.message}\n`);
    return EXIT_NOT_A_SPOOL;
  }
  return report(scan);
}
