// SPDX-License-Identifier: Apache-2.0
/*
 * What is derived from the operations sources of deploy/, written once:
 *
 * - deploy/kubernetes/prometheusrule.yaml: the groups of deploy/prometheus/audit-rules.yaml as a
 *   Prometheus Operator `PrometheusRule`;
 * - the metric reference table of the README's "Operating it" section (between its markers),
 *   from deploy/metrics.json.
 *
 *   node scripts/generate-deploy.ts           write them   (npm run deploy:generate)
 *   node scripts/generate-deploy.ts --check   exit 1 when a file differs from what it generates
 *
 * The operations test suite (test/operate) runs the check.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const RULES_PATH = 'deploy/prometheus/audit-rules.yaml';
export const PROMETHEUS_RULE_PATH = 'deploy/kubernetes/prometheusrule.yaml';
export const METRICS_PATH = 'deploy/metrics.json';
export const README_PATH = 'README.md';
const TABLE_START = '<!-- metric-table:start (generated from deploy/metrics.json) -->';
const TABLE_END = '<!-- metric-table:end -->';

/** One entry of deploy/metrics.json. */
export interface MetricEntry {
  otel: string;
  prometheus: string;
  type: 'counter' | 'gauge' | 'histogram';
  unit: string;
  labels: string[];
  source: 'library' | 'bridge' | 'server';
  appears: 'start' | 'use' | 'event';
  meaning: string;
  /** What the code does not do yet. */
  awaiting?: string;
  /** The unit the current code records instead of `unit` (with `awaiting`). */
  currentUnit?: string;
}

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

export function readMetrics(): MetricEntry[] {
  return (JSON.parse(read(METRICS_PATH)) as { metrics: MetricEntry[] }).metrics;
}

/** The PrometheusRule manifest of the rules file. */
export function prometheusRule(rulesYaml: string = read(RULES_PATH)): string {
  const { groups } = parse(rulesYaml) as { groups: unknown[] };
  const manifest = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'kubernaut-audit',
      labels: {
        'app.kubernetes.io/name': 'kubernaut-audit',
        'app.kubernetes.io/component': 'alerting',
        'app.kubernetes.io/part-of': 'kubernaut',
      },
    },
    spec: { groups },
  };
  return [
    `# Generated from ${RULES_PATH} by \`npm run deploy:generate\`: edit that file, not this one.`,
    "# Add the labels your Prometheus's ruleSelector expects (e.g. `release: <your release>`).",
    stringify(manifest, { lineWidth: 0 }),
  ].join('\n');
}

const SOURCE: Record<MetricEntry['source'], string> = {
  library: 'processor / exporter',
  bridge: 'bridge',
  server: 'DataStorage',
};

/** Prometheus names as they appear on /metrics. */
function prometheusNames(m: MetricEntry): string {
  return m.type === 'histogram'
    ? `\`${m.prometheus}_bucket\`, \`_sum\`, \`_count\``
    : `\`${m.prometheus}\``;
}

/** The metric reference table of the README. */
export function metricTable(metrics: MetricEntry[] = readMetrics()): string {
  const rows = metrics.map((m) => {
    const labels = m.labels.length ? m.labels.map((l) => `\`${l}\``).join(', ') : '—';
    const meaning = m.awaiting ? `${m.meaning} *Awaiting: ${m.awaiting}.*` : m.meaning;
    return `| \`${m.otel}\` (${m.type}) | ${prometheusNames(m)} | \`${m.unit}\` | ${labels} | ${SOURCE[m.source]} | ${meaning.replaceAll('|', '\\|')} |`;
  });
  return [
    TABLE_START,
    '| OTel name | Prometheus | unit | labels | from | what it means for an operator |',
    '|---|---|---|---|---|---|',
    ...rows,
    TABLE_END,
  ].join('\n');
}

/** The README with its metric table regenerated; throws when the markers are missing. */
export function readmeWithTable(readme: string = read(README_PATH)): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) {
    throw new Error(`${README_PATH} lacks the metric table markers ${TABLE_START} … ${TABLE_END}`);
  }
  return readme.slice(0, start) + metricTable() + readme.slice(end + TABLE_END.length);
}

/** Every generated file: path → content. */
export function generated(): Record<string, string> {
  return {
    [PROMETHEUS_RULE_PATH]: prometheusRule(),
    [README_PATH]: readmeWithTable(),
  };
}

/** Paths whose content differs from what is generated. */
export function stale(): string[] {
  return Object.entries(generated())
    .filter(([path, content]) => {
      try {
        return read(path) !== content;
      } catch {
        return true;
      }
    })
    .map(([path]) => path);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--check')) {
    const paths = stale();
    if (paths.length) {
      console.error(`out of date (run npm run deploy:generate): ${paths.join(', ')}`);
      process.exit(1);
    }
  } else {
    for (const [path, content] of Object.entries(generated())) {
      writeFileSync(join(ROOT, path), content);
      console.log(`wrote ${path}`);
    }
  }
}
