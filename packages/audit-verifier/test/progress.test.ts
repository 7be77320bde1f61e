// SPDX-License-Identifier: Apache-2.0
/*
 * Progress of long operations: a status line only for a terminal (`io.progress`), only once an
 * operation has run a while, throttled, erased before the report; `verify` and `dead-letters
 * replay` report how far they are, and their output is the same with and without progress.
 * Under a real pseudo-terminal the command draws the line in place; piped, it prints none.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { ProvenanceStamper } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { nodeBinary, sampleEvent, storedForm } from '@kubernaut/test-kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../src/cli/command.ts';
import { main } from '../src/cli/index.ts';
import { startProgress, terminalProgress } from '../src/cli/progress.ts';
import { type StubDataStorage, startStub } from './stub-datastorage.ts';

const BIN = new URL('../src/bin.ts', import.meta.url).pathname;

let stub: StubDataStorage;
let dir: string;
beforeEach(async () => {
  stub = await startStub((e) => storedForm(e as unknown as AuditEventRequest));
  dir = mkdtempSync(join(tmpdir(), 'kn-progress-'));
});
afterEach(async () => {
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A clock that starts at `start` and moves `step` ms at every reading after the first. */
function steppingClock(start: number, step: number): () => number {
  let t = start - step;
  return () => (t += step);
}

function stampedEvents(n: number, producerId = 'prod-p'): AuditEventRequest[] {
  const stamper = ProvenanceStamper.open({ producerId });
  const base = Date.now() - 30 * 60_000;
  return Array.from({ length: n }, (_, i) =>
    stamper.stamp(sampleEvent(i, { event_timestamp: new Date(base + i * 100).toISOString() })),
  );
}

/** A child process's exit code and output (async: the stub answers from this process). */
function child(
  command: string,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    c.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function run(args: string[], io: Partial<CliIo> = {}) {
  let out = '';
  let err = '';
  const code = await main(args, {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    ...io,
  });
  return { code, out, err };
}

describe('the progress line', () => {
  it('is nothing without a terminal, and never builds its text then', () => {
    const p = startProgress({ stdout: () => {}, stderr: () => {} });
    let built = 0;
    p.update(() => `${++built}`);
    p.done();
    expect(built).toBe(0);
  });

  it('waits for the delay, is throttled, builds text only to show it, and is erased once', () => {
    let t = 0;
    const lines: string[] = [];
    const io: CliIo = {
      stdout: () => {},
      stderr: () => {},
      now: () => t,
      progress: (l) => lines.push(l),
    };
    const p = startProgress(io, { delayMillis: 300, intervalMillis: 250 });
    let built = 0;
    const text = (s: string) => () => {
      built++;
      return s;
    };
    t = 100;
    p.update(text('too early'));
    t = 300;
    p.update(text('first'));
    t = 400;
    p.update(text('throttled'));
    t = 550;
    p.update(text('second'));
    p.done();
    p.update(text('after done'));
    p.done();
    expect(lines).toEqual(['first', 'second', '']);
    expect(built).toBe(2);
  });

  it('a quick operation shows nothing and erases nothing', () => {
    const lines: string[] = [];
    const p = startProgress({
      stdout: () => {},
      stderr: () => {},
      now: () => 0,
      progress: (l) => lines.push(l),
    });
    p.update(() => 'quick');
    p.done();
    expect(lines).toEqual([]);
  });

  it('is drawn over the current terminal line and cut to its width', () => {
    let written = '';
    const draw = terminalProgress(
      (t) => (written += t),
      () => 20,
    );
    draw('short');
    draw('a line much longer than the terminal');
    draw('');
    expect(written).toBe('\r\x1b[2Kshort\r\x1b[2Ka line much longer…\r\x1b[2K');
    let unknown = '';
    terminalProgress(
      (t) => (unknown += t),
      () => 0,
    )('no width: 80 columns');
    expect(unknown).toBe('\r\x1b[2Kno width: 80 columns');
  });
});

describe('progress of long commands', () => {
  it('verify: events read and chains checked, then erased; the report is the same without it', async () => {
    stub.events.push(...stampedEvents(2500).map((e) => storedForm(e)));
    const start = Date.now();
    const lines: string[] = [];
    const shown = await run(['verify', '--url', stub.url, '--since', '1h', '--json'], {
      now: steppingClock(start, 1000),
      progress: (l) => lines.push(l),
    });
    const plain = await run(['verify', '--url', stub.url, '--since', '1h', '--json'], {
      now: steppingClock(start, 1000),
    });
    expect(shown.code).toBe(0);
    expect(shown.out).toBe(plain.out);
    expect(shown.err).toBe(plain.err);
    expect(lines).toContain('reading events from DataStorage: 2,500 of 2,500 (3 requests)');
    expect(
      lines.some((l) => /^checking DataStorage's hash chains: \d+ of 3 correlations/.test(l)),
    ).toBe(true);
    expect(lines.at(-1)).toBe('');
  });

  it('dead-letters replay: dead letters sent so far, then erased', async () => {
    const file = join(dir, 'dead-letter.jsonl');
    const events = stampedEvents(600, 'prod-r');
    writeFileSync(
      file,
      events
        .map((event) => JSON.stringify({ time: 't', reason: 'rejected', status: 400, event }))
        .join('\n'),
    );
    const lines: string[] = [];
    const r = await run(['dead-letters', 'replay', file, '--url', stub.url, '--all'], {
      now: steppingClock(Date.now(), 1000),
      progress: (l) => lines.push(l),
    });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^replayed 600 dead letter\(s\); skipped 0/);
    expect(lines).toEqual([
      'replaying dead letters: 500 of 600 sent',
      'replaying dead letters: 600 of 600 sent',
      '',
    ]);
  });

  it('the command draws it on a real terminal, and prints none when piped', async () => {
    stub.events.push(...stampedEvents(2500).map((e) => storedForm(e)));
    stub.delayMillis = 150;
    const args = [
      '--conditions=@kubernaut/source',
      BIN,
      'verify',
      '--url',
      stub.url,
      '--since',
      '1h',
    ];
    const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
    // `script` runs the command under a pseudo-terminal (util-linux), as a person would.
    const tty = await child('script', [
      '-qfec',
      [nodeBinary(), ...args].map(quote).join(' '),
      '/dev/null',
    ]);
    expect(tty.status, tty.stdout + tty.stderr).toBe(0);
    // The status line is drawn over itself (carriage return, erase line), then erased.
    const ERASE = '\r\x1b[2K';
    const drawn = tty.stdout.split(ERASE);
    expect(drawn.some((l) => /^reading events from DataStorage: [\d,]+ of 2,500/.test(l))).toBe(
      true,
    );
    expect(drawn.at(-1)).toMatch(/^(\r\n)?Audit trail verification COMPLETE/);
    const piped = await child(nodeBinary(), args);
    expect(piped.status).toBe(0);
    expect(piped.stdout).toMatch(/^Audit trail verification COMPLETE/);
    expect(piped.stderr).toBe('');
  });
});
