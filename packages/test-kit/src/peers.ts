// SPDX-License-Identifier: Apache-2.0
/*
 * Real peers for tests: the OpenTelemetry Collector built by scripts/peers.sh, the Go and
 * Python SDK emitters, schemathesis. scripts/peers.sh (run by `npm test`) writes
 * .cache/peers/peers.json; a test that needs a peer fails with a clear message when it is
 * missing, it never skips.
 *
 * Also: free ports, a Collector process with its log lines and Prometheus metrics, and a
 * bounded poll for what a peer does asynchronously (no sleeps).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from './spec.ts';

export interface Peers {
  collector: string;
  collectorVersion: string;
  goEmitter: string;
  otelGoSdkLogVersion: string;
  python: string;
  pythonEmitter: string;
  otelPythonSdkVersion: string;
  schemathesis: string;
  schemathesisVersion: string;
}

const PEERS_FILE = join(
  process.env.KUBERNAUT_PEERS_CACHE ?? join(REPO_ROOT, '.cache/peers'),
  'peers.json',
);

let cached: Peers | undefined;

/** The provisioned peers; throws (fails the test) when scripts/peers.sh has not run. */
export function peers(): Peers {
  if (cached) return cached;
  if (!existsSync(PEERS_FILE)) {
    throw new Error(
      `${PEERS_FILE} is missing: run \`bash scripts/peers.sh\` (npm test does) to build the Collector and the SDK peers`,
    );
  }
  const p = JSON.parse(readFileSync(PEERS_FILE, 'utf8')) as Peers;
  for (const [key, value] of Object.entries(p)) {
    if (!key.endsWith('Version') && !existsSync(value)) {
      throw new Error(`peer ${key} is missing at ${value}: run \`bash scripts/peers.sh\``);
    }
  }
  cached = p;
  return p;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `check` until it returns a value other than `undefined`/`false`, or fails with
 * `describe()` once `timeoutMs` passed. For what a peer outside this process does in its own
 * time (a Collector's queue, retries): bounded, never a fixed sleep.
 */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const interval = options.intervalMs ?? 100;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${options.timeoutMs ?? 60_000} ms${options.describe ? `: ${options.describe()}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** A running Collector process. */
export interface CollectorProcess {
  /** Base URL of its OTLP/HTTP receiver. */
  readonly otlpHttpUrl: string;
  /** Every log line so far (stderr and stdout). */
  readonly lines: string[];
  /** Its Prometheus metrics, parsed: `name{labels}` → value. */
  metrics(): Promise<Map<string, number>>;
  /** Sum of the samples of `name` whose labels contain every `labels` pair. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Log records the debug exporter (the non-audit route) reported. */
  debugLogRecords(): number;
  /** Sends a signal and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  readonly process: ChildProcess;
}

export interface CollectorOptions {
  config: string;
  env: Record<string, string>;
  /** How long to wait for "Everything is ready" [60 s]. */
  startTimeoutMs?: number;
}

/**
 * Starts the Collector with `config`, OTLP receivers and its metrics on fresh loopback ports
 * (through the config's environment variables), and waits until it is ready.
 */
export async function startCollector(options: CollectorOptions): Promise<CollectorProcess> {
  const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(peers().collector, ['--config', options.config], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpcPort}`,
      OTLP_HTTP_ENDPOINT: `127.0.0.1:${httpPort}`,
      OTELCOL_METRICS_HOST: '127.0.0.1',
      OTELCOL_METRICS_PORT: String(metricsPort),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  const onData = (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code;
      resolve();
    }),
  );

  const metrics = async (): Promise<Map<string, number>> => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const out = new Map<string, number>();
    for (const line of (await res.text()).split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const at = line.lastIndexOf(' ');
      out.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
    return out;
  };

  const collector: CollectorProcess = {
    otlpHttpUrl: `http://127.0.0.1:${httpPort}`,
    lines,
    metrics,
    async metric(name, labels = {}) {
      let sum = 0;
      for (const [key, value] of await metrics()) {
        const brace = key.indexOf('{');
        const metricName = brace < 0 ? key : key.slice(0, brace);
        if (metricName !== name) continue;
        const ok = Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`));
        if (ok) sum += value;
      }
      return sum;
    },
    debugLogRecords() {
      let n = 0;
      for (const line of lines) {
        if (!line.includes('"otelcol.component.id": "debug"')) continue;
        const m = /"log records": (\d+)/.exec(line);
        if (m) n += Number(m[1]);
      }
      return n;
    },
    async kill(signal = 'SIGTERM') {
      if (exitCode === undefined) child.kill(signal);
      await exited;
    },
    process: child,
  };

  try {
    await waitFor(
      () => {
        if (exitCode !== undefined) throw new Error(`the Collector exited (${exitCode})`);
        return lines.some((l) => l.includes('Everything is ready'));
      },
      {
        timeoutMs: options.startTimeoutMs ?? 60_000,
        describe: () => `the Collector did not start:\n${lines.slice(-20).join('\n')}`,
      },
    );
  } catch (err) {
    await collector.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${lines.slice(-20).join('\n')}`);
  }
  return collector;
}

/** Runs a program to completion, feeding `stdin`; resolves with its exit code and output. */
export async function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; stdin?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  child.stdin.end(options.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
