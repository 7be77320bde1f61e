// SPDX-License-Identifier: Apache-2.0
/*
 * The shipped programs as child processes of a test, run from source with the project's Node:
 * `kubernaut-audit-otlp-bridge` and `kubernaut-datastorage`. Their JSON log lines are collected;
 * a program is ready once it logs that it listens.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { nodeBinary } from '@kubernaut/test-kit';
import { ROOT } from './deploy.ts';

export const BRIDGE_BIN = join(ROOT, 'packages/otlp-bridge/src/bin.ts');
export const DATASTORAGE_BIN = join(ROOT, 'packages/datastorage-server/src/bin.ts');

/** A running program. */
export interface Program {
  child: ChildProcess;
  /** Its log lines so far (parsed JSON; `{raw}` for anything else). */
  lines: Array<Record<string, unknown>>;
  /** The line it logged when it began to listen. */
  listening: Record<string, unknown>;
  exited: Promise<number | null>;
  /** SIGTERM, then its exit code (SIGKILL after `graceMillis`). */
  stop(graceMillis?: number): Promise<number | null>;
}

/** Variables of the programs that must not leak from the test's own environment. */
const PROGRAM_VARIABLES =
  /^(PORT|HOST|DATABASE_URL|PGLITE_DIR|REDIS_URL|REDIS_STREAM|LOG_LEVEL|KUBERNAUT_|OTEL_)/;

export function startProgram(
  bin: string,
  args: string[],
  env: Record<string, string>,
  readyMessage: string,
): Promise<Program> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !PROGRAM_VARIABLES.test(k)),
  );
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', bin, ...args], {
    cwd: ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async (graceMillis = 15_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMillis);
      const code = await exited;
      clearTimeout(timer);
      return code;
    }
    return exited;
  };
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          line = { raw: text };
        }
        lines.push(line);
        if (line.msg === readyMessage) {
          resolve({ child, lines, listening: line, exited, stop });
        }
      }
    });
    exited.then((code) =>
      reject(
        new Error(`${bin} exited with ${code} before "${readyMessage}": ${JSON.stringify(lines)}`),
      ),
    );
  });
}
