// SPDX-License-Identifier: Apache-2.0
/*
 * `npm run bench` (DESIGN §10): runs every scenario in a fresh child process (isolation, fair
 * GC and JIT), collects their JSON results and prints one table per scenario with the
 * machine's description. Writes nothing unless `--write-results` is given: then the tables in
 * bench/RESULTS.md are replaced between the markers.
 *
 *   node bench/run.ts [--quick] [--write-results] [--only 1,2,...]
 *
 * The packages are built first (turbo, cached): scenario 4's bursts load them as an application
 * does; the other scenarios read their TypeScript sources (same code, types stripped).
 *
 * `--quick` shrinks every scenario (the 1,000,000-record outage burst becomes 100,000 records
 * with a 10 s outage) for development; RESULTS.md should hold a full run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTs } from './lib/child.ts';
import { TEMPLATES_ENV } from './lib/env.ts';
import { describeMachine, loadAverage, type MachineInfo, machineLine } from './lib/machine.ts';
import type { ScenarioResult } from './lib/result.ts';
import { renderScenario, renderTable } from './lib/table.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const RESULTS = join(HERE, 'RESULTS.md');
const START_MARK = '<!-- bench:results:start -->';
const END_MARK = '<!-- bench:results:end -->';

interface Scenario {
  id: string;
  title: string;
  file: string;
  /** Kill the scenario after this long (it then reports "not available"). */
  timeoutMillis: number;
}

const SCENARIOS: Scenario[] = [
  { id: '1', title: '1. Emit cost', file: 'scenarios/emit-cost.ts', timeoutMillis: 150_000 },
  {
    id: '2',
    title: '2. Exporter throughput to a loopback sink (201)',
    file: 'scenarios/exporter-throughput.ts',
    timeoutMillis: 120_000,
  },
  {
    id: '3',
    title: '3. End to end into the reference DataStorage on PostgreSQL',
    file: 'scenarios/end-to-end.ts',
    timeoutMillis: 180_000,
  },
  {
    id: '4',
    title: '4. Loss under pressure',
    file: 'scenarios/loss.ts',
    timeoutMillis: 480_000,
  },
  {
    id: '5',
    title: '5. Spool: emit cost and throughput per durability mode',
    file: 'scenarios/spool.ts',
    timeoutMillis: 150_000,
  },
  {
    id: '6',
    title: '6. Reference DataStorage ingest vs the PostgreSQL COPY floor',
    file: 'datastorage-throughput.ts',
    timeoutMillis: 600_000,
  },
  {
    id: '7',
    title: '7. Delivery cost: emit → accepted by a loopback sink',
    file: 'scenarios/delivery-cost.ts',
    timeoutMillis: 300_000,
  },
  {
    id: '8',
    title: '8. The Collector route: OTLP/HTTP → bridge → loopback sink',
    file: 'scenarios/collector-route.ts',
    timeoutMillis: 240_000,
  },
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const write = args.includes('--write-results');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',')) : undefined;

function notAvailable(s: Scenario, reason: string): ScenarioResult {
  return {
    id: s.id,
    title: s.title,
    tables: [
      {
        title: 'not available',
        headers: ['scenario', 'status'],
        rows: [[s.title, `not available: ${reason}`]],
      },
    ],
    notes: [],
    load: { start: loadAverage(), end: loadAverage() },
    seconds: 0,
    quick,
  };
}

/** The most telling line of a failed child's stderr: its first error line, else its last lines. */
function errorSummary(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('Node.js v') && !l.startsWith('['));
  const err = lines.find((l) => /^(\w*Error|AggregateError)\b|Error:/.test(l));
  return (err ?? lines.slice(-3).join(' / ')).slice(0, 300);
}

const machineAtStart = describeMachine();
const startedAt = new Date();
const started = performance.now();
console.log(`# Kubernaut audit benchmarks${quick ? ' (QUICK)' : ''}`);
console.log(`Started ${new Date().toISOString()} on ${machineLine(machineAtStart)}\n`);

const built = spawnSync(join(HERE, '..', 'node_modules', '.bin', 'turbo'), ['run', 'build'], {
  cwd: join(HERE, '..'),
  encoding: 'utf8',
  env: { ...process.env, PATH: `${join(HERE, '..', 'node_modules', '.bin')}:${process.env.PATH}` },
});
if (built.status !== 0) {
  throw new Error(`cannot build the packages: ${(built.stderr || built.stdout).slice(-600)}`);
}
const dir = mkdtempSync(join(tmpdir(), 'kubernaut-bench-'));
const results: ScenarioResult[] = [];
// Record templates from the spec, made once here so that scenario processes do not parse it.
const templatesFile = join(dir, 'templates.json');
const made = await runTs(join(HERE, 'lib/make-templates.ts'), [templatesFile], {
  timeoutMillis: 60_000,
});
if (made.code !== 0) throw new Error(`cannot build the record templates: ${made.stderr}`);
try {
  for (const s of SCENARIOS) {
    if (only && !only.has(s.id)) continue;
    process.stderr.write(`running ${s.title} ...\n`);
    const resultFile = join(dir, `scenario-${s.id}.json`);
    const run = await runTs(
      join(HERE, s.file),
      [...(quick ? ['--quick'] : []), '--result-file', resultFile],
      {
        timeoutMillis: s.timeoutMillis,
        echo: true,
        cwd: join(HERE, '..'),
        env: { [TEMPLATES_ENV]: templatesFile },
      },
    );
    let result: ScenarioResult;
    if (run.timedOut) {
      result = notAvailable(s, `timed out after ${s.timeoutMillis / 1000} s`);
    } else if (run.code !== 0) {
      result = notAvailable(
        s,
        `exited with ${run.code ?? run.signal}: ${errorSummary(run.stderr) || 'no output'}`,
      );
    } else {
      try {
        result = JSON.parse(readFileSync(resultFile, 'utf8')) as ScenarioResult;
      } catch (err) {
        result = notAvailable(s, `no result (${String(err)})`);
      }
    }
    results.push(result);
    console.log(`${renderScenario(result)}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const machineAtEnd: MachineInfo = describeMachine();
const totalSeconds = Math.round((performance.now() - started) / 1000);
const loads = [
  machineAtStart.loadavg[0],
  ...results.flatMap((r) => [r.load.start, r.load.end]),
  machineAtEnd.loadavg[0],
];
const maxLoad = Math.max(...loads);
// The load average includes the benchmark's own processes (up to ~2 busy: the scenario, the
// sink or the server, PostgreSQL): more than the core count means other work was running too.
const loadVerdict =
  maxLoad <= machineAtStart.cores
    ? "no more than the benchmark's own processes: the machine was otherwise quiet"
    : 'taken UNDER LOAD (other work was running; CPU-bound figures are pessimistic and noisy)';
const footer = [
  `Machine: ${machineLine(machineAtStart)} (at start); load average ${machineAtEnd.loadavg.join(' / ')} at end.`,
  `Highest 1-min load average seen during the run: ${maxLoad} on ${machineAtStart.cores} cores — ${loadVerdict}.`,
  `Whole run: ${totalSeconds} s${quick ? ' (QUICK sizes)' : ''}.`,
].join('\n');
const goalTable = renderTable({
  title: 'Goals',
  headers: ['scenario', 'goal', 'measured', 'met'],
  rows: results.flatMap((r) =>
    (r.goals ?? []).map((g) => [r.id, g.goal, g.measured, g.met ? 'yes' : '**no**']),
  ),
});
console.log(`${goalTable}\n`);
console.log(footer);

if (write) {
  const body = [
    START_MARK,
    `_Run started ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC: \`npm run bench${quick ? ' -- --quick' : ''}\`._`,
    '',
    footer,
    '',
    goalTable,
    '',
    ...results.map((r) => `${renderScenario(r)}\n`),
    END_MARK,
  ].join('\n');
  let doc: string;
  try {
    doc = readFileSync(RESULTS, 'utf8');
  } catch {
    doc = `# Benchmark results\n\n${START_MARK}\n${END_MARK}\n`;
  }
  const a = doc.indexOf(START_MARK);
  const b = doc.indexOf(END_MARK);
  doc =
    a >= 0 && b > a
      ? doc.slice(0, a) + body + doc.slice(b + END_MARK.length)
      : `${doc.trimEnd()}\n\n${body}\n`;
  writeFileSync(RESULTS, doc);
  console.log(`\nwrote ${RESULTS}`);
}
