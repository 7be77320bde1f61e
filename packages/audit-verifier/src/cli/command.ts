// SPDX-License-Identifier: Apache-2.0
/*
 * The layer every `kubernaut-audit` command shares: how a command is declared (name, summary,
 * synopsis, options with their help, positional arguments, exit codes), how its arguments are
 * parsed (node:util parseArgs, strict), how `--help` is answered (always, before anything else
 * is checked, exit 0), and how usage errors become exit 2. A command is one module exporting one
 * `defineCommand(...)`; the command table is in ./index.ts.
 */
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

/** Where the CLI writes. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Clock for relative `--since` and for progress [Date.now]. */
  now?: () => number;
  /**
   * A status line for a person watching (see ./progress.ts): the whole line each time, `''`
   * erases it. Set only when stderr is a terminal; absent, long operations print no progress.
   */
  progress?: (line: string) => void;
}

/** Exit code: complete / done. */
export const EXIT_OK = 0;
/** Exit code: an incomplete trail (gap, duplicate, chain break, invalid chain) or a failed replay. */
export const EXIT_INCOMPLETE = 1;
/** Exit code: a usage or operational error (message on stderr). */
export const EXIT_USAGE = 2;
/** Exit code: nothing was verified (no event with provenance in the window): never a pass. */
export const EXIT_EMPTY = 3;

/** The exit code of a usage or operational error, in the words every command's help uses. */
export const EXIT_CODE_USAGE: readonly [number, string] = [
  EXIT_USAGE,
  'usage or operational error (DataStorage unreachable, an unreadable file; message on stderr)',
];

/** A wrong command line or option value: the message is printed with the command's usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** What a command's `run` gets besides its arguments. */
export interface CommandContext {
  io: CliIo;
  /** `io.now()` at the start of the command. */
  now: number;
}

type Parsed<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>
>;

/** The declaration of one command. */
export interface CommandSpec<O extends ParseArgsOptionsConfig> {
  /** Words after `kubernaut-audit`: `verify`, `dead-letters list`. */
  name: string;
  /** One line: what the command does. */
  summary: string;
  /** Usage lines without the leading `kubernaut-audit <name>`; one starting with a space continues the one before. */
  synopsis: readonly string[];
  options: O;
  /** `[flags, meaning]` for the help, in the order shown. */
  optionHelp: ReadonlyArray<readonly [string, string]>;
  /** Positional arguments: their name in the help and how many are allowed [none]. */
  positionals?: { name: string; max: number };
  /** Every exit code the command can end with, and what it means. */
  exitCodes: ReadonlyArray<readonly [number, string]>;
  run(args: Parsed<O>, context: CommandContext): Promise<number> | number;
}

/** A declared command, its option types erased for the command table. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly exitCodes: ReadonlyArray<readonly [number, string]>;
  /** The command's `--help` text. */
  help(): string;
  /** Its usage lines (`kubernaut-audit <name> …`). */
  usage(): string;
  /** Parses `args` (the words after the command's name) and runs it. Throws on usage errors. */
  invoke(args: readonly string[], context: CommandContext): Promise<number>;
}

export function isHelpFlag(arg: string | undefined): boolean {
  return arg === '--help' || arg === '-h';
}

/** Declares a command. */
export function defineCommand<const O extends ParseArgsOptionsConfig>(
  spec: CommandSpec<O>,
): Command {
  const prefix = `kubernaut-audit ${spec.name}`;
  // A synopsis line that starts with a space continues the line before it.
  const usage = () =>
    spec.synopsis
      .map((line) =>
        line.startsWith(' ')
          ? `  ${' '.repeat(prefix.length)}${line}`
          : `  ${prefix}${line ? ` ${line}` : ''}`,
      )
      .join('\n');
  const help = () => {
    const rows = [...spec.optionHelp, ['-h, --help', 'this help'] as const];
    const width = Math.max(...rows.map(([flags]) => flags.length));
    return [
      `kubernaut-audit ${spec.name}: ${spec.summary}`,
      '',
      'Usage:',
      usage(),
      '',
      'Options:',
      ...rows.map(([flags, meaning]) => `  ${flags.padEnd(width)}  ${meaning}`),
      '',
      'Exit codes:',
      ...spec.exitCodes.map(([code, meaning]) => `  ${code}  ${meaning}`),
      '',
    ].join('\n');
  };
  return {
    name: spec.name,
    summary: spec.summary,
    exitCodes: spec.exitCodes,
    help,
    usage,
    async invoke(args, context) {
      const parsed = parseArgs({
        args: [...args],
        options: spec.options,
        allowPositionals: true,
        strict: true,
      }) as Parsed<O>;
      const max = spec.positionals?.max ?? 0;
      if (parsed.positionals.length > max) {
        const extra = parsed.positionals.slice(max).map((p) => JSON.stringify(p));
        throw new UsageError(
          `unexpected argument${extra.length > 1 ? 's' : ''} ${extra.join(' ')}`,
        );
      }
      return await spec.run(parsed, context);
    },
  };
}
