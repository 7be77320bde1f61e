// SPDX-License-Identifier: Apache-2.0
/*
 * `kubernaut-audit`: completeness evidence for audit trails delivered to DataStorage.
 *
 * The command table: each command is one module declared with `defineCommand` (./command.ts),
 * named by one or more words (`verify`, `dead-letters list`, `spool inspect`). A command added
 * later is one more module and one more line here; help, `--help`, exit codes and
 * usage errors come from the shared layer.
 */
import { errorText } from '@kubernaut/datastorage-contract/config';
import { RequestTimeoutError } from '../client.ts';
import { VERSION } from '../version.ts';
import {
  type CliIo,
  type Command,
  EXIT_EMPTY,
  EXIT_INCOMPLETE,
  EXIT_OK,
  EXIT_USAGE,
  isHelpFlag,
  UsageError,
} from './command.ts';
import { deadLettersListCommand } from './dead-letters-list.ts';
import { deadLettersReplayCommand } from './dead-letters-replay.ts';
import { spoolCheckCommand } from './spool-check.ts';
import { spoolInspectCommand } from './spool-inspect.ts';
import { verifyCommand } from './verify.ts';

export { EXIT_NOT_A_SPOOL, EXIT_SPOOL_DAMAGED } from './spool-report.ts';
export { type CliIo, type Command, EXIT_EMPTY, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE };

/** Every command, in the order the overview lists them. */
export const COMMANDS: readonly Command[] = [
  verifyCommand,
  deadLettersListCommand,
  deadLettersReplayCommand,
  spoolInspectCommand,
  spoolCheckCommand,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `kubernaut-audit ${VERSION}: completeness evidence for audit trails in Kubernaut DataStorage`,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run `kubernaut-audit <command> --help` for a command's options and exit codes;",
    '`kubernaut-audit --version` for the version.',
    '',
  ].join('\n');
}

/** The commands whose name starts with `words`. */
function commandsUnder(words: readonly string[]): Command[] {
  return COMMANDS.filter((c) => {
    const name = c.name.split(' ');
    return words.length <= name.length && words.every((w, i) => name[i] === w);
  });
}

/** The command named by the leading words of `args`, and the words after its name. */
function resolve(args: readonly string[]): { command: Command; rest: string[] } | undefined {
  for (const command of COMMANDS) {
    const name = command.name.split(' ');
    if (name.every((w, i) => args[i] === w)) return { command, rest: args.slice(name.length) };
  }
  return undefined;
}

/** The help of a group of commands (`dead-letters`): their usage lines. */
function groupHelp(group: string, commands: readonly Command[]): string {
  return [
    `kubernaut-audit ${group}: ${commands.length} commands`,
    '',
    ...commands.flatMap((c) => [`  ${c.name}: ${c.summary}`, c.usage(), '']),
    `Run \`kubernaut-audit ${group} <command> --help\` for options and exit codes.`,
    '',
  ].join('\n');
}

/** Runs the CLI with `args` (without node and script). Resolves to the exit code; never throws. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let command: Command | undefined;
  try {
    const [first] = args;
    if (first === undefined) {
      io.stderr(overview());
      return EXIT_USAGE;
    }
    if (first === '--version' || first === '-V' || first === 'version') {
      io.stdout(`${VERSION}\n`);
      return EXIT_OK;
    }
    const helpWanted = first === 'help' || isHelpFlag(first);
    const words = first === 'help' ? args.slice(1) : args;
    const found = resolve(words);
    command = found?.command;
    if (found !== undefined && (helpWanted || found.rest.some(isHelpFlag))) {
      io.stdout(found.command.help());
      return EXIT_OK;
    }
    if (found === undefined) {
      // A group name (`dead-letters`), maybe with --help; or an unknown command.
      const named = words.filter((w) => !isHelpFlag(w));
      const group = commandsUnder(named.slice(0, 1));
      if (named.length === 1 && group.length > 0) {
        const text = groupHelp(named[0] as string, group);
        if (helpWanted || words.some(isHelpFlag)) {
          io.stdout(text);
          return EXIT_OK;
        }
        io.stderr(`kubernaut-audit: ${named[0]}: which command?\n${text}`);
        return EXIT_USAGE;
      }
      if (helpWanted && named.length === 0) {
        io.stdout(overview());
        return EXIT_OK;
      }
      throw new UsageError(`unknown command ${JSON.stringify(named.join(' ') || first)}`);
    }
    const now = (io.now ?? Date.now)();
    return await found.command.invoke(found.rest, { io, now });
  } catch (err) {
    const hint = err instanceof RequestTimeoutError ? ' (--timeout)' : '';
    io.stderr(`kubernaut-audit: ${errorText(err)}${hint}\n`);
    if (err instanceof UsageError || isParseArgsError(err)) {
      io.stderr(command !== undefined ? `usage:\n${command.usage()}\n` : overview());
    }
    return EXIT_USAGE;
  }
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}
