// SPDX-License-Identifier: Apache-2.0
/*
 * CPU profiles of the hot paths (for RESULTS.md): runs each target in a child process under
 * `node --cpu-prof` and prints the functions and files with the most self time.
 *
 *   node bench/profile.ts [emit|sync-emit|export|drain ...]   (default: all)
 *
 *  emit       AuditLogRecordProcessor (spool 'batch') + sink: 100,000 emits in chunks of 100
 *  sync-emit  the same with spool 'sync'
 *  export     KubernautAuditExporter.export() of 20,000 records in batches of 500, 5 times
 *  drain      50,000 records spooled while the sink is down, then delivered (sender path)
 *
 * PROFILE_TOP=N lists the N functions with the most self time (18 by default).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTs } from './lib/child.ts';
import { TEMPLATES_ENV } from './lib/env.ts';

const TARGETS = ['emit', 'sync-emit', 'export', 'drain'] as const;
type Target = (typeof TARGETS)[number];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time by function and by file; with `focus`, only inside the call subtrees of functions
 * named `focus` (e.g. the processor's onEmit: what emit() itself costs).
 */
function summarize(
  file: string,
  focus?: string,
  top = Number(process.env.PROFILE_TOP ?? 18),
): string {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  let self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  if (focus) {
    const inside = new Set<number>();
    const mark = (id: number) => {
      if (inside.has(id)) return;
      inside.add(id);
      for (const c of byId.get(id)?.children ?? []) mark(c);
    };
    for (const n of prof.nodes) if (n.callFrame.functionName === focus) mark(n.id);
    self = new Map([...self].filter(([id]) => inside.has(id)));
  }
  let total = 0;
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const f = n.callFrame;
    const where = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : '';
    const fnKey = `${f.functionName || '(anonymous)'} ${where}`.trim();
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + us);
    const fileKey = f.url ? short(f.url) : f.functionName || '(native)';
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const lines = [
    `${focus ? `inside ${focus}(): ` : ''}total sampled ${(total / 1000).toFixed(0)} ms`,
    'self time by function:',
  ];
  for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${pct(us)}  ${k}`);
  }
  lines.push('self time by file:');
  for (const [k, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    lines.push(`  ${pct(us)}  ${k}`);
  }
  return lines.join('\n');
}

function short(url: string): string {
  const i = url.indexOf('/packages/');
  if (i >= 0) return url.slice(i + 1);
  const j = url.lastIndexOf('/node_modules/');
  return j >= 0 ? url.slice(j + 14) : url.replace(/^file:\/\//, '');
}

{
  const wanted = process.argv.slice(2).filter((a) => (TARGETS as readonly string[]).includes(a));
  for (const target of (wanted.length > 0 ? wanted : TARGETS) as Target[]) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-cpuprof-'));
    const templates = join(dir, 'templates.json');
    await runTs(fileURLToPath(new URL('./lib/make-templates.ts', import.meta.url)), [templates], {
      timeoutMillis: 60_000,
    });
    const run = await runTs(
      fileURLToPath(new URL('./lib/profile-target.ts', import.meta.url)),
      [target],
      {
        timeoutMillis: 300_000,
        nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
        env: { [TEMPLATES_ENV]: templates },
      },
    );
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    console.log(`## ${target}`);
    if (run.code !== 0 || !file) console.log(`failed: ${run.stderr.slice(-500)}`);
    else {
      console.log(summarize(join(dir, file)));
      if (target.endsWith('emit')) console.log(`\n${summarize(join(dir, file), 'onEmit')}`);
    }
    console.log('');
    rmSync(dir, { recursive: true, force: true });
  }
}
