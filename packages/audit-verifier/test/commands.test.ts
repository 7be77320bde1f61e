// SPDX-License-Identifier: Apache-2.0
/*
 * The command layer of `kubernaut-audit`: per-command help, version, exit codes documented in
 * the help and the README, a reader that goes away (EPIPE), a DataStorage that never answers,
 * and a verdict that never passes on nothing.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { ProvenanceStamper } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { nodeBinary, sampleEvent, storedForm } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VerifyReport } from '../src/analyze.ts';
import { COMMANDS, EXIT_EMPTY } from '../src/cli/index.ts';
import { runCli } from './run-cli.ts';
import { type StubDataStorage, startStub } from './stub-datastorage.ts';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

let stub: StubDataStorage;
let dir: string;
beforeEach(async () => {
  stub = await startStub((e) => storedForm(e as unknown as AuditEventRequest));
  dir = mkdtempSync(join(tmpdir(), 'kn-cmd-'));
});
afterEach(async () => {
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = runCli;

describe('help and version', () => {
  it('every command answers --help with its usage and its exit codes, exit 0', async () => {
    for (const command of COMMANDS) {
      const words = command.name.split(' ');
      for (const help of [
        [...words, '--help'],
        [...words, '-h'],
        ['help', ...words],
      ]) {
        const r = await run(...help);
        expect(r, help.join(' ')).toMatchObject({ code: 0, err: '' });
        expect(r.out).toContain(`kubernaut-audit ${command.name}`);
        expect(r.out).toContain('Exit codes:');
        for (const [code] of command.exitCodes)
          expect(r.out).toMatch(new RegExp(`^ +${code} `, 'm'));
      }
    }
    // --help wins over missing or unknown options.
    expect((await run('verify', '--bogus', '--help')).code).toBe(0);
    const group = await run('dead-letters', '--help');
    expect(group.code).toBe(0);
    expect(group.out).toContain('dead-letters list');
    expect(group.out).toContain('dead-letters replay');
  });

  it('the README documents the exit codes of every command as its --help does', () => {
    for (const command of COMMANDS) {
      const section = README.split(/^## /m).find((s) =>
        s.startsWith(`\`kubernaut-audit ${command.name.split(' ')[0]}`),
      );
      expect(section, command.name).toBeDefined();
      for (const [code, meaning] of command.exitCodes) {
        expect(section, `${command.name} exit ${code}`).toContain(`| \`${code}\` | ${meaning} |`);
      }
    }
  });

  it('--version prints the package version, exit 0', async () => {
    for (const flag of ['--version', '-V', 'version']) {
      const r = await run(flag);
      expect(r).toEqual({ code: 0, out: `${PACKAGE.version}\n`, err: '' });
    }
  });

  it('no command prints the overview and exits 2; an unknown command says so', async () => {
    const none = await run();
    expect(none.code).toBe(2);
    expect(none.err).toContain('verify');
    const unknown = await run('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown command "frobnicate"');
  });
});

describe('kubernaut-audit dead-letters list', () => {
  function manyDeadLetters(n: number): string {
    const stamper = ProvenanceStamper.open({ producerId: 'prod-pipe' });
    const file = join(dir, 'dead-letter.jsonl');
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = stamper.stamp(sampleEvent(i));
      lines.push(
        JSON.stringify({
          time: 't',
          reason: 'rejected',
          detail: `bad ${i}`,
          status: 400,
          event: e,
        }),
      );
    }
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  it('takes the file as an argument (or --file)', async () => {
    const file = manyDeadLetters(3);
    const positional = await run('dead-letters', 'list', file);
    expect(positional.code).toBe(0);
    expect(positional.out).toMatch(/^3 dead letter\(s\) in /);
    const flag = await run('dead-letters', 'list', '--file', file);
    expect(flag.out).toBe(positional.out);
    expect((await run('dead-letters', 'list')).code).toBe(2);
  });

  it("names a record that could not be mapped by its event type and correlation id (from the processor's own dead letter)", async () => {
    const spool = join(dir, 'spool');
    const processor = new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({ url: stub.url }),
      spool: { directory: spool },
    });
    const provider = new LoggerProvider({ processors: [processor] });
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 20; i++) deep = { n: deep };
    provider.getLogger('cli').emit({
      eventName: 'orders.refund.create',
      attributes: {
        'audit.event.category': 'orders',
        'audit.event.action': 'create',
        'audit.event.outcome': 'success',
        'audit.correlation.id': 'corr-dl-1',
        'audit.actor.type': 'user',
        'audit.actor.id': 'u1',
        'audit.resource.type': 'Order',
        'audit.resource.id': 'o1',
      },
      body: deep, // nests too deep: dead-lettered at drain, as a snapshot of the record
    });
    provider.getLogger('cli').emit({
      attributes: {
        'audit.event.category': 'orders',
        'audit.event.type': 'orders.cancelled',
        'audit.correlation.id': 'corr-dl-2',
      },
      body: deep,
    });
    await provider.shutdown();
    const r = await run('dead-letters', 'list', join(spool, 'dead-letter.jsonl'), '--json');
    expect(r.code).toBe(0);
    const { entries } = JSON.parse(r.out) as {
      entries: Array<{ seq: number; event_type: string | null; correlation_id: string | null }>;
    };
    expect(entries.map((e) => [e.seq, e.event_type, e.correlation_id])).toEqual([
      [1, 'orders.refund.create', 'corr-dl-1'],
      [2, 'orders.cancelled', 'corr-dl-2'],
    ]);
    const text = await run('dead-letters', 'list', join(spool, 'dead-letter.jsonl'));
    expect(text.out).toContain('orders.refund.create');
    expect(text.out).toContain('corr-dl-2');
  });

  it('`| head -1` gets its line and the command exits quietly (no EPIPE)', async () => {
    const file = manyDeadLetters(4000);
    const { stdout, stderr } = await promisify(execFile)(
      'bash',
      [
        '-c',
        `set -o pipefail; "$NODE" --conditions=@kubernaut/source "$BIN" dead-letters list "$FILE" | head -1`,
      ],
      { env: { ...process.env, NODE: nodeBinary(), BIN, FILE: file }, timeout: 30_000 },
    );
    expect(stdout).toMatch(/^4000 dead letter\(s\) in .*\n$/);
    expect(stderr).toBe('');
  });
});

describe('kubernaut-audit verify: a verdict only on evidence', () => {
  it('an empty window is NOTHING VERIFIED with its own exit code, in text and JSON', async () => {
    expect(EXIT_EMPTY).toBe(3);
    const text = await run('verify', '--url', stub.url, '--since', '1h');
    expect(text.code).toBe(EXIT_EMPTY);
    expect(text.out).toContain('NOTHING VERIFIED');
    expect(text.out).not.toContain('COMPLETE');
    const json = await run('verify', '--url', stub.url, '--json');
    expect(json.code).toBe(EXIT_EMPTY);
    const report = JSON.parse(json.out) as VerifyReport;
    expect(report.verdict).toBe('empty');
    expect(report.complete).toBe(false);
  });

  it('events without provenance only are NOTHING VERIFIED too', async () => {
    const plain = storedForm(sampleEvent(1));
    stub.events.push(plain);
    const r = await run('verify', '--url', stub.url);
    expect(r.code).toBe(EXIT_EMPTY);
    expect(r.out).toContain('NOTHING VERIFIED');
    expect(r.out).toContain('without provenance: 1');
  });

  it('a server that is not DataStorage is an error (exit 2), not a verdict', async () => {
    const other = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>hello</html>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const { port } = other.address() as AddressInfo;
      const r = await run('verify', '--url', `http://127.0.0.1:${port}`);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/not a DataStorage audit query answer/);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it('--timeout bounds each request to a server that accepts and never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const { port } = silent.address() as AddressInfo;
      const started = performance.now();
      const r = await run('verify', '--url', `http://127.0.0.1:${port}`, '--timeout', '300ms');
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        /did not answer GET \/api\/v1\/audit\/events within 0\.3 s \(--timeout\)/,
      );
      expect(sockets.length).toBeGreaterThan(0);
      const bad = await run('verify', '--url', `http://127.0.0.1:${port}`, '--timeout', 'soon');
      expect(bad.code).toBe(2);
      expect(bad.err).toContain('--timeout');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('a complete trail is still COMPLETE, exit 0', async () => {
    const stamper = ProvenanceStamper.open({ producerId: 'prod-ok' });
    for (let i = 0; i < 3; i++) stub.events.push(storedForm(stamper.stamp(sampleEvent(i))));
    const r = await run('verify', '--url', stub.url, '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as VerifyReport).verdict).toBe('complete');
  });
});
