// SPDX-License-Identifier: Apache-2.0
/* Runs a TypeScript file of the workspace in a child Node process (the project's Node 24). */
import { spawn } from 'node:child_process';

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `file` with `--conditions=@kubernaut/source` (plus `nodeArgs`), capturing stdout and
 * stderr (stderr is also echoed live when `echo`), killing it after `timeoutMillis`. With
 * `built`, the workspace packages load from their build output (as an application runs them)
 * instead of their TypeScript sources. With `cgroupProcs`, the child joins that cgroup (its
 * `cgroup.procs` file) before Node starts, so that Node sizes its heap from the cgroup's limit.
 */
export function runTs(
  file: string,
  args: string[],
  options: {
    timeoutMillis: number;
    env?: NodeJS.ProcessEnv;
    echo?: boolean;
    nodeArgs?: string[];
    cwd?: string;
    built?: boolean;
    cgroupProcs?: string;
  },
): Promise<ChildRun> {
  return new Promise((resolve) => {
    const nodeArgs = [
      ...(options.built ? [] : ['--conditions=@kubernaut/source']),
      ...(options.nodeArgs ?? []),
      file,
      ...args,
    ];
    const [command, commandArgs] =
      options.cgroupProcs === undefined
        ? [process.execPath, nodeArgs]
        : [
            '/bin/sh',
            [
              '-c',
              'echo $$ > "$0" && exec "$@"',
              options.cgroupProcs,
              process.execPath,
              ...nodeArgs,
            ],
          ];
    const child = spawn(command as string, commandArgs as string[], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (options.echo) process.stderr.write(d);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMillis);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}
