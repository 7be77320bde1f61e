// SPDX-License-Identifier: Apache-2.0
/* `kubernaut-audit spool check DIR`: an fsck of a spool, read only, with exit codes. */
import { defineCommand, EXIT_CODE_USAGE, EXIT_OK, UsageError } from './command.ts';
import { runScan } from './spool-inspect.ts';
import { checkText, EXIT_CODE_NOT_A_SPOOL, EXIT_SPOOL_DAMAGED, scanJson } from './spool-report.ts';

export const spoolCheckCommand = defineCommand({
  name: 'spool check',
  summary:
    'checks every frame of a spool and reports damage with its offset (exit code), read only',
  synopsis: ['DIR [--json]'],
  options: { json: { type: 'boolean' } },
  optionHelp: [
    ['DIR', 'the spool directory (read only: nothing is written, the lock is never taken)'],
    ['--json', 'the report as JSON (`status`: clean or damaged)'],
  ],
  positionals: { name: 'DIR', max: 1 },
  exitCodes: [
    [EXIT_OK, 'clean: every frame and log frame intact'],
    [
      EXIT_SPOOL_DAMAGED,
      'damaged: regions recovery will skip (file, offset, reason listed), or meta.json unreadable',
    ],
    EXIT_CODE_USAGE,
    EXIT_CODE_NOT_A_SPOOL,
  ],
  run({ values, positionals }, { io, now }) {
    const dir = positionals[0];
    if (dir === undefined) throw new UsageError('which directory? (spool check DIR)');
    return runScan(dir, now, Boolean(values.json), io, (scan) => {
      io.stdout(values.json ? `${JSON.stringify(scanJson(scan), null, 2)}\n` : checkText(scan));
      return scan.damaged.length > 0 ? EXIT_SPOOL_DAMAGED : EXIT_OK;
    });
  },
});
