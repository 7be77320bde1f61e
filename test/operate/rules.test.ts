// SPDX-License-Identifier: Apache-2.0
/*
 * The shipped alert rules, checked and unit-tested with the real promtool (Debian's package,
 * installed by scripts/services.sh): the rules file is valid; every alert fires when it should
 * and stays quiet when it should not (deploy/prometheus/audit-rules.test.yaml, with `for:`
 * durations and thresholds as shipped); every alert names a runbook section that exists; the
 * PrometheusRule manifest carries the same groups; every metric the rules use is in the metric
 * list, whose names follow OTel's Prometheus exporter and whose durations are in seconds.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  PROMETHEUS_RULE_PATH,
  prometheusRule,
  README_PATH,
  stale,
} from '../../scripts/generate-deploy.ts';
import {
  alertRules,
  anchorOf,
  entryOf,
  METRICS_PATH,
  metricNamesIn,
  PROMETHEUS_BUILTINS,
  ROOT,
  RULE_TESTS_PATH,
  RULES_PATH,
  RUNBOOK_PATH,
  RUNBOOK_URL,
  readMetrics,
  readRules,
  readRuleTests,
  readText,
} from './support/deploy.ts';

const promtool = (...args: string[]) =>
  spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('alert rules', () => {
  it('pass promtool check rules', () => {
    const r = promtool('check', 'rules', RULES_PATH);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${alertRules().length} rules found`);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const r = promtool('test', 'rules', RULE_TESTS_PATH);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('unit tests that would catch a changed `for:` (a rule without it fails them)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-rules-'));
    dirs.push(dir);
    const doc = parse(readText(RULES_PATH)) as {
      groups: { rules: { alert: string; for?: string }[] }[];
    };
    const rule = doc.groups
      .flatMap((g) => g.rules)
      .find((r) => r.alert === 'AuditDeliveryFailing')!;
    expect(rule.for).toBe('5m');
    delete rule.for;
    writeFileSync(join(dir, 'audit-rules.yaml'), stringify(doc));
    writeFileSync(join(dir, 'audit-rules.test.yaml'), readText(RULE_TESTS_PATH));
    const r = spawnSync('promtool', ['test', 'rules', 'audit-rules.test.yaml'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/alertname: AuditDeliveryFailing, time: 4m/);
  });

  it('have a firing case and a quiet case in the unit tests, for every alert and severity', () => {
    const cases = readRuleTests().tests.flatMap((t) => t.alert_rule_test);
    const missing: string[] = [];
    for (const rule of alertRules()) {
      const own = cases.filter((c) => c.alertname === rule.alert);
      const fires = own.some((c) =>
        c.exp_alerts.some((a) => a.exp_labels.severity === rule.labels.severity),
      );
      const quiet = own.some((c) => c.exp_alerts.length === 0);
      if (!fires) missing.push(`${rule.alert} (${rule.labels.severity}): no firing case`);
      if (!quiet) missing.push(`${rule.alert}: no quiet case`);
    }
    expect(missing).toEqual([]);
  });

  it('name their runbook section, which exists, with a severity, a summary and a description', () => {
    const headings = new Set(
      [...readText(RUNBOOK_PATH).matchAll(/^## (.+)$/gm)].map((m) => anchorOf(m[1]!)),
    );
    for (const rule of alertRules()) {
      expect(rule.annotations.runbook_url).toBe(`${RUNBOOK_URL}#${rule.alert.toLowerCase()}`);
      expect(headings, `runbook section for ${rule.alert}`).toContain(rule.alert.toLowerCase());
      expect(['critical', 'warning']).toContain(rule.labels.severity);
      expect(rule.annotations.summary).toBeTruthy();
      expect(rule.annotations.description).toMatch(/\{\{ \$labels\.instance \}\}/);
    }
  });

  it('use only metrics of the metric list', () => {
    const metrics = readMetrics();
    const unknown = alertRules().flatMap((r) =>
      metricNamesIn(r.expr)
        .filter((n) => !PROMETHEUS_BUILTINS.has(n) && !entryOf(n, metrics))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
    // The extraction itself: names in, functions, labels and durations out.
    expect(
      metricNamesIn(
        'sum without (a, b) (rate(x_total{c="d"}[5m])) / on (job) group_left y_bucket > 0.8 unless z offset 10m',
      ).sort(),
    ).toEqual(['x_total', 'y_bucket', 'z']);
  });

  it('ship as a PrometheusRule with the same groups, generated from the rules file', () => {
    expect(stale()).not.toContain(PROMETHEUS_RULE_PATH);
    const manifest = parse(readText(PROMETHEUS_RULE_PATH)) as {
      kind: string;
      spec: { groups: unknown };
    };
    expect(manifest.kind).toBe('PrometheusRule');
    expect(manifest.spec.groups).toEqual(readRules());
    // What the check compares with is what the generator writes.
    expect(readText(PROMETHEUS_RULE_PATH)).toBe(prometheusRule());
  });
});

describe('metric list', () => {
  const metrics = readMetrics();

  it('names each metric as OTel’s Prometheus exporter does, once', () => {
    for (const m of metrics) {
      const base = m.otel.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_{2,}/g, '_');
      expect(m.prometheus, m.otel).toBe(m.type === 'counter' ? `${base}_total` : base);
    }
    expect(new Set(metrics.map((m) => m.otel)).size).toBe(metrics.length);
  });

  it('has every duration in seconds and every size in bytes', () => {
    for (const m of metrics) {
      if (/(duration|latency|drift|_age)$/.test(m.otel)) expect(m.unit, m.otel).toBe('s');
      if (/(bytes|size|usage|capacity|memory)$/.test(m.otel) && !m.otel.startsWith('otel.sdk')) {
        expect(m.unit, m.otel).toBe('By');
      }
    }
  });

  it('is the README’s reference table', () => {
    expect(stale()).not.toContain(README_PATH);
    expect(readText(README_PATH)).toContain('| `kubernaut.audit.spool.dropped` (counter)');
  });

  it('is valid JSON with the documented fields', () => {
    const doc = JSON.parse(readText(METRICS_PATH)) as { metrics: unknown[] };
    expect(doc.metrics.length).toBe(metrics.length);
    for (const m of metrics) {
      expect(['counter', 'gauge', 'histogram']).toContain(m.type);
      expect(['library', 'bridge', 'server']).toContain(m.source);
      expect(['start', 'use', 'event']).toContain(m.appears);
      expect(m.meaning.length).toBeGreaterThan(20);
    }
  });
});
