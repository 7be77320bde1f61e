// SPDX-License-Identifier: Apache-2.0
/*
 * The kubernaut-datastorage command as a child process of a test: started from source with the
 * given flags and environment, its JSON log lines collected, stopped by a signal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeBinary } from '@kubernaut/test-kit';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

/** A running command. */
export interface RunningCommand {
  child: ChildProcess;
  /** The API's base URL, as it logged it. */
  url: string;
  /** Its log lines so far (JSON objects, in order). */
  lines: Array<Record<string, unknown>>;
  /** Its exit code, once it exited. */
  exited: Promise<number | null>;
}

/** The command's own variables: the child gets only those a test gives it. */
const SERVER_VARIABLES = [
  'PORT',
  'HOST',
  'DATABASE_URL',
  'PGLITE_DIR',
  'KUBERNAUT_DATASTORAGE_SPEC',
  'REDIS_URL',
  'REDIS_STREAM',
  'LOG_LEVEL',
  'KUBERNAUT_DATASTORAGE_AUTH_TOKEN_FILE',
  'KUBERNAUT_DATASTORAGE_AUTH_KUBERNETES',
  'KUBERNAUT_DATASTORAGE_ALLOW_UNAUTHENTICATED',
  'KUBERNAUT_DATASTORAGE_MANAGEMENT_PORT',
  'KUBERNAUT_DATASTORAGE_CHAIN_KEY_FILE',
];

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SERVER_VARIABLES) delete out[name];
  return { ...out, ...env };
}

/**
 * Starts the command and resolves once it logs that it listens; rejects when it exits first
 * (with its log) or writes a line that is not JSON.
 */
export function startCommand(
  args: string[],
  env: Record<string, string> = {},
): Promise<RunningCommand> {
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', BIN, ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          reject(new Error(`not a JSON log line: ${line}`));
          continue;
        }
        lines.push(parsed);
        if (parsed.msg === 'datastorage listening') {
          resolve({ child, url: parsed.url as string, lines, exited });
        }
      }
    });
    exited.then((code) => reject(new Error(`exited with ${code}: ${JSON.stringify(lines)}`)));
  });
}

/** Stops a command (SIGTERM unless told otherwise) and waits for it to exit. */
export async function stopCommand(
  running: RunningCommand | undefined,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null | undefined> {
  if (!running) return undefined;
  if (running.child.exitCode === null && running.child.signalCode === null) {
    running.child.kill(signal);
  }
  return running.exited;
}
