// SPDX-License-Identifier: Apache-2.0
/*
 * Reading what deploy/ ships, for the operations suites: the alert rules, their unit tests, the
 * dashboard, the metric list, and the metric names a PromQL expression uses.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  METRICS_PATH,
  type MetricEntry,
  ROOT,
  RULES_PATH,
  readMetrics,
} from '../../../scripts/generate-deploy.ts';

export { METRICS_PATH, type MetricEntry, ROOT, RULES_PATH, readMetrics };
export const RULE_TESTS_PATH = 'deploy/prometheus/audit-rules.test.yaml';
export const DASHBOARD_PATH = 'deploy/grafana/kubernaut-audit.json';
export const RUNBOOK_PATH = 'docs/runbook.md';
export const RUNBOOK_URL =
  'https://github.com/kubernaut/kubernaut-audit-otel/blob/main/docs/runbook.md';

/** Series Prometheus makes itself (not on any /metrics). */
export const PROMETHEUS_BUILTINS = new Set(['ALERTS', 'ALERTS_FOR_STATE', 'up']);

export const readText = (path: string) => readFileSync(join(ROOT, path), 'utf8');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function readRules(): { name: string; rules: AlertRule[] }[] {
  return (parse(readText(RULES_PATH)) as { groups: { name: string; rules: AlertRule[] }[] }).groups;
}

export function alertRules(): AlertRule[] {
  return readRules().flatMap((g) => g.rules);
}

export interface RuleTestFile {
  tests: {
    name: string;
    alert_rule_test: {
      eval_time: string;
      alertname: string;
      exp_alerts: { exp_labels: Record<string, string> }[];
    }[];
  }[];
}

export function readRuleTests(): RuleTestFile {
  return parse(readText(RULE_TESTS_PATH)) as RuleTestFile;
}

interface Panel {
  id?: number;
  title?: string;
  type?: string;
  targets?: { expr?: string; refId?: string }[];
  panels?: Panel[];
}
export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; definition?: string }[] };
}

export function readDashboard(): Dashboard {
  return JSON.parse(readText(DASHBOARD_PATH)) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function dashboardPanels(d: Dashboard = readDashboard()): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboard: panel targets and query variables. */
export function dashboardQueries(
  d: Dashboard = readDashboard(),
): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of dashboardPanels(d)) {
    for (const t of p.targets ?? []) {
      if (t.expr) out.push({ where: `panel "${p.title}" ${t.refId ?? ''}`, expr: t.expr });
    }
  }
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string })?.query;
    if (!q) continue;
    // label_values(metric_selector, label): the metric is the first argument.
    const m = /^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.exec(q.trim());
    if (m) out.push({ where: `variable $${v.name}`, expr: m[1]! });
  }
  return out;
}

/** PromQL expressions in ```promql blocks of a Markdown text. */
export function promqlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: Grafana variables, strings, label matchers,
 * ranges, grouping clauses, numbers and durations are removed, then every identifier that is not
 * a function, an aggregation or a keyword is a metric name.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/\$\{[^}]*\}|\$[a-zA-Z_][a-zA-Z0-9_]*/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b\d+(\.\d+)?([eE][+-]?\d+)?(ms|s|m|h|d|w|y)?\b/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** The entry of the metric list a series name belongs to (histograms: _bucket, _sum, _count). */
export function entryOf(name: string, metrics: MetricEntry[]): MetricEntry | undefined {
  return metrics.find(
    (m) =>
      m.prometheus === name ||
      (m.type === 'histogram' &&
        ['_bucket', '_sum', '_count'].some((s) => `${m.prometheus}${s}` === name)),
  );
}

/** GitHub's anchor of a Markdown heading. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
