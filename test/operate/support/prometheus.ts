// SPDX-License-Identifier: Apache-2.0
/*
 * A real Prometheus server (Debian's `prometheus`, on PATH: scripts/services.sh installs it) for
 * a test: its configuration is deploy/prometheus/prometheus.example.yml with the test's targets,
 * short scrape and evaluation intervals, and the SHIPPED rules file, unchanged. Everything about
 * it is read through its HTTP API, polled with bounded deadlines (it is a peer outside the test's
 * control).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitFor } from '@kubernaut/test-kit';
import { parse, stringify } from 'yaml';
import { ROOT, RULES_PATH, readText } from './deploy.ts';

export const EXAMPLE_CONFIG_PATH = 'deploy/prometheus/prometheus.example.yml';

export interface ActiveAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  value: string;
}

export interface PrometheusServer {
  url: string;
  /** Active alerts (pending or firing). */
  alerts(): Promise<ActiveAlert[]>;
  /** Instant query: each series' labels and value. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: number }[]>;
  /** Resolves once every rule group has been evaluated after this call (data up to now). */
  evaluated(timeoutMs?: number): Promise<void>;
  /** Scrape health per job. */
  targets(): Promise<Record<string, { health: string; lastError: string }>>;
  stop(): Promise<void>;
  /** Its log, for failure messages. */
  log(): string;
}

interface ApiAnswer<T> {
  status: string;
  data: T;
  error?: string;
}

async function api<T>(url: string, path: string): Promise<T> {
  const res = await fetch(`${url}${path}`);
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? res.status}`);
  return body.data;
}

export async function startPrometheus(options: {
  dir: string;
  /** job name → `host:port` of a management port. */
  targets: Record<string, string>;
  intervalSeconds?: number;
}): Promise<PrometheusServer> {
  const interval = `${options.intervalSeconds ?? 1}s`;
  const example = parse(readText(EXAMPLE_CONFIG_PATH)) as {
    global: Record<string, string>;
    rule_files: string[];
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  // The example's jobs, with the test's targets; the shipped rules file itself.
  const jobs = example.scrape_configs.map((c) => c.job_name).sort();
  if (JSON.stringify(jobs) !== JSON.stringify(Object.keys(options.targets).sort())) {
    throw new Error(
      `targets ${Object.keys(options.targets)} do not match the example's jobs ${jobs}`,
    );
  }
  const config = {
    ...example,
    global: { ...example.global, scrape_interval: interval, evaluation_interval: interval },
    rule_files: [join(ROOT, RULES_PATH)],
    scrape_configs: example.scrape_configs.map((c) => ({
      ...c,
      scrape_timeout: interval,
      static_configs: [{ targets: [options.targets[c.job_name]!] }],
    })),
  };
  const configPath = join(options.dir, 'prometheus.yml');
  writeFileSync(configPath, stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(options.dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    log = (log + chunk).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let dead = false;
  exited.then(() => {
    dead = true;
  });
  await waitFor(
    async () => {
      if (dead) throw new Error(`prometheus exited: ${log}`);
      return (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100, describe: () => log },
  );

  const server: PrometheusServer = {
    url,
    log: () => log,
    alerts: async () => (await api<{ alerts: ActiveAlert[] }>(url, '/api/v1/alerts')).alerts,
    query: async (expr) =>
      (
        await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
          url,
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        )
      ).result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) })),
    evaluated: async (timeoutMs = 15_000) => {
      const since = Date.now();
      await waitFor(
        async () => {
          const { groups } = await api<{ groups: { lastEvaluation: string }[] }>(
            url,
            '/api/v1/rules',
          );
          return groups.length > 0 && groups.every((g) => Date.parse(g.lastEvaluation) > since);
        },
        { timeoutMs, intervalMs: 100 },
      );
    },
    targets: async () => {
      const { activeTargets } = await api<{
        activeTargets: { labels: { job: string }; health: string; lastError: string }[];
      }>(url, '/api/v1/targets');
      return Object.fromEntries(
        activeTargets.map((t) => [t.labels.job, { health: t.health, lastError: t.lastError }]),
      );
    },
    stop: async () => {
      if (!dead) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  return server;
}
