// SPDX-License-Identifier: Apache-2.0
/*
 * The packages as a user installs them (DESIGN §3). From a clean copy of the checkout (the files
 * git tracks or would track: nothing built, no node_modules), as a user and a CI job would:
 *
 * 1. `npm ci`, then `npx kubernaut-audit` and `npx kubernaut-datastorage` before anything is built;
 * 2. `npm pack` of every published package (the `prepack` script builds it);
 * 3. the tarballs installed together into fresh ESM, CommonJS and TypeScript applications with the
 *    current OpenTelemetry SDK from the npm registry: one copy of @opentelemetry/sdk-logs and
 *    core serves the exporter and @opentelemetry/sdk-node; TypeScript compiles against every
 *    package's public types with `skipLibCheck: false`; each application delivers audit events to
 *    a reference DataStorage started here, read back through the query API, and the installed
 *    `kubernaut-audit verify` finds the trail complete;
 * 4. the ESM and CommonJS applications on Node.js 22.15.0, the oldest the packages support
 *    (`engines`; the `node` package from the registry), deliver as well;
 * 5. the ESM application on Node.js 20 (the `node@20` package from the registry) is told plainly
 *    that it needs Node.js >= 22.15.
 *
 * What can be cached is, under the repository's git-ignored .cache/packaging: the copy's
 * node_modules (reinstalled when package-lock.json changes) and the Node.js 20 and 22.15 binaries; npm's own
 * cache makes the applications' installs offline after the first run.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { type DataStorageServer, startDataStorageServer } from '@kubernaut/datastorage-server';
import { queryEvents, REPO_ROOT, testPgliteCacheDir } from '@kubernaut/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CACHE = join(REPO_ROOT, '.cache', 'packaging');
const CHECKOUT = join(CACHE, 'checkout');
const TARBALLS = join(CACHE, 'tarballs');
const APPS = join(CACHE, 'apps');
const NODE20 = join(CACHE, 'node20');
const OLDEST_NODE = '22.15.0';
const NODE22 = join(CACHE, `node${OLDEST_NODE}`);
const PUBLISHED = [
  'packages/semantic-conventions',
  'packages/audit-provenance',
  'packages/audit-spool-format',
  'packages/datastorage-contract',
  'packages/exporter-kubernaut-audit',
  'packages/audit-verifier',
  'packages/datastorage-server',
  'packages/otlp-bridge',
];
const BINS: Record<string, string> = {
  'packages/audit-verifier': 'bin/kubernaut-audit.js',
  'packages/datastorage-server': 'bin/kubernaut-datastorage.js',
  'packages/otlp-bridge': 'bin/kubernaut-audit-otlp-bridge.js',
};
const run = promisify(execFile);

/** npm's CLI script, run with this process's Node.js (the project's Node 24). */
function npmCli(): string {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm?.endsWith('npm-cli.js')) return fromNpm;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'npm');
    if (!existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    if (real.endsWith('npm-cli.js')) return real;
  }
  throw new Error('npm not found: the packaging test runs npm as a user would');
}

/** The environment of a user's shell: no npm_* variables of the `npm test` around this run. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      !/^npm_/i.test(k) &&
      k !== 'INIT_CWD' &&
      !k.startsWith('OTEL_') &&
      !k.startsWith('KUBERNAUT_')
    )
      env[k] = v;
  }
  return { ...env, TURBO_TELEMETRY_DISABLED: '1', npm_config_update_notifier: 'false', ...extra };
}

async function npm(cwd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(process.execPath, [npmCli(), ...args], {
      cwd,
      env: userEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `npm ${args.join(' ')} failed in ${cwd}:\n${e.stderr ?? ''}\n${e.stdout ?? ''}`,
    );
  }
}

/** Removes everything under `dir` except node_modules folders (kept as the install cache). */
function cleanKeepingNodeModules(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !entry.isSymbolicLink()) {
      cleanKeepingNodeModules(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
    } else {
      rmSync(path, { force: true });
    }
  }
}

/** A clean copy of the checkout: the files git tracks or would track, nothing built. */
async function prepareCheckout(): Promise<void> {
  mkdirSync(CHECKOUT, { recursive: true });
  cleanKeepingNodeModules(CHECKOUT);
  const files = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  )
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(REPO_ROOT, f)));
  for (const f of files) {
    mkdirSync(dirname(join(CHECKOUT, f)), { recursive: true });
    copyFileSync(join(REPO_ROOT, f), join(CHECKOUT, f));
  }
  const lockHash = createHash('sha256')
    .update(readFileSync(join(CHECKOUT, 'package-lock.json')))
    .digest('hex');
  const stamp = join(CACHE, 'checkout-lock.sha256');
  const installed = existsSync(stamp) ? readFileSync(stamp, 'utf8') : '';
  if (installed !== lockHash || !existsSync(join(CHECKOUT, 'node_modules'))) {
    await npm(CHECKOUT, ['ci', '--prefer-offline', '--no-audit', '--no-fund']);
    writeFileSync(stamp, lockHash);
  }
}

interface PackResult {
  filename: string;
  files: Array<{ path: string }>;
}

const APP_SOURCE = (moduleKind: 'esm' | 'cjs' | 'ts') => {
  const imports =
    moduleKind === 'cjs'
      ? [
          "const { logs } = require('@opentelemetry/api');",
          "const { NodeSDK } = require('@opentelemetry/sdk-node');",
          "const { AuditLogRecordProcessor } = require('@kubernaut/exporter-kubernaut-audit');",
        ]
      : [
          "import { logs } from '@opentelemetry/api';",
          "import { NodeSDK } from '@opentelemetry/sdk-node';",
          "import { AuditLogRecordProcessor } from '@kubernaut/exporter-kubernaut-audit';",
        ];
  const typed =
    moduleKind === 'ts'
      ? [
          // Every package's public entry, type-checked with skipLibCheck: false.
          "import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';",
          "import { canonicalize } from '@kubernaut/audit-provenance';",
          "import { MAX_BATCH_EVENTS, type AuditEventRequest } from '@kubernaut/datastorage-contract';",
          "import { analyze, type VerifyReport } from '@kubernaut/audit-verifier';",
          "import { startDataStorageServer, type DataStorageServerOptions } from '@kubernaut/datastorage-server';",
          "import { startOtlpBridge } from '@kubernaut/audit-otlp-bridge';",
          "import { excludeAuditLines } from '@kubernaut/exporter-kubernaut-audit/logging';",
          "const options: DataStorageServerOptions = { port: 0, storage: { kind: 'pglite' } };",
          'const report: VerifyReport = analyze({ events: [] });',
          "const partial: Partial<AuditEventRequest> = { event_category: 'gateway' };",
          'export const used = [ATTR_AUDIT_EVENT_CATEGORY, canonicalize, MAX_BATCH_EVENTS, startDataStorageServer, startOtlpBridge, excludeAuditLines, options, report, partial];',
        ]
      : [];
  const main = [
    "const sdk = new NodeSDK({ serviceName: 'packaging-app', logRecordProcessors: [new AuditLogRecordProcessor()] });",
    'sdk.start();',
    'for (let i = 0; i < 3; i++) {',
    "  logs.getLogger('packaging').emit({",
    "    eventName: 'gateway.signal.received',",
    "    body: { signal_type: 'alert', signal_name: 'HighMemoryUsage', namespace: 'payment', fingerprint: 'fp-' + i },",
    "    attributes: { 'audit.event.category': 'gateway', 'audit.event.action': 'received', 'audit.event.outcome': 'success', 'audit.correlation.id': String(process.env.CORRELATION_ID) },",
    '  });',
    '}',
  ];
  const end =
    moduleKind === 'cjs'
      ? ['sdk.shutdown().then(() => console.log("shut down"));']
      : ['await sdk.shutdown();', 'console.log("shut down");'];
  return [...imports, ...typed, ...main, ...end].join('\n');
};

async function installApp(kind: 'esm' | 'cjs' | 'ts', tarballs: string[]): Promise<string> {
  const dir = join(APPS, kind);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: `app-${kind}`,
      private: true,
      type: kind === 'cjs' ? 'commonjs' : 'module',
    }),
  );
  // An application that already runs OpenTelemetry (the current SDK from the registry) adopts
  // the packages: the tarballs installed together, as the README says.
  const registry = ['@opentelemetry/api', '@opentelemetry/sdk-node'];
  if (kind === 'ts') registry.push('typescript', '@types/node');
  const install = ['install', '--prefer-offline', '--no-audit', '--no-fund'];
  await npm(dir, [...install, ...registry]);
  await npm(dir, [...install, ...tarballs]);
  if (kind === 'ts') {
    writeFileSync(join(dir, 'app.ts'), APP_SOURCE('ts'));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2023',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          skipLibCheck: false,
          types: ['node'],
          outDir: 'dist',
        },
        files: ['app.ts'],
      }),
    );
  } else {
    writeFileSync(join(dir, kind === 'esm' ? 'app.mjs' : 'app.cjs'), APP_SOURCE(kind));
  }
  return dir;
}

/** Every installed copy of `name` under `dir`. */
function installedCopies(dir: string, name: string): string[] {
  const out: string[] = [];
  const walk = (nm: string) => {
    if (!existsSync(nm)) return;
    const candidate = join(nm, name, 'package.json');
    if (existsSync(candidate)) out.push(candidate);
    for (const entry of readdirSync(nm, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const scope = entry.name.startsWith('@')
        ? readdirSync(join(nm, entry.name)).map((n) => join(entry.name, n))
        : [entry.name];
      for (const s of scope) walk(join(nm, s, 'node_modules'));
    }
  };
  walk(join(dir, 'node_modules'));
  return out;
}

/** The `node` package `spec` from the registry, installed (once) into `dir`: its binary. */
async function nodeFromRegistry(dir: string, spec: string): Promise<string> {
  const bin = join(dir, 'node_modules', '.bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: basename(dir), private: true, allowScripts: { node: true } }),
    );
    await npm(dir, ['install', '--no-audit', '--no-fund', spec]);
  }
  return bin;
}

const node20 = () => nodeFromRegistry(NODE20, 'node@20');
/** The oldest Node.js the packages support (their `engines`). */
const node22 = () => nodeFromRegistry(NODE22, `node@${OLDEST_NODE}`);

let server: DataStorageServer;
let packs: Record<string, PackResult> = {};
let tarballs: string[] = [];
const apps: Record<string, string> = {};
const beforeBuild: Record<
  string,
  { code: number; stdout: string; stderr: string; built: boolean }
> = {};

async function runIn(
  dir: string,
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(command, args, { cwd: dir, env: userEnv(env), timeout: 120_000 });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
    };
  }
}

/**
 * Runs an installed application (`entry` in `dir`, with the Node.js `bin`) against the test
 * server, spooling in `dir/<spool>`, its records under `correlationId`.
 */
function runApp(
  dir: string,
  bin: string,
  entry: string,
  spool: string,
  correlationId: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runIn(dir, bin, [entry], {
    KUBERNAUT_AUDIT_ENDPOINT: server.url,
    KUBERNAUT_AUDIT_SPOOL_DIR: join(dir, spool),
    CORRELATION_ID: correlationId,
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
  });
}

beforeAll(async () => {
  server = await startDataStorageServer({
    port: 0,
    storage: { kind: 'pglite', cacheDir: testPgliteCacheDir() },
    quiet: true,
  });
  await prepareCheckout();
  // Before anything is built: the commands of the checkout, through npx as the README says.
  for (const [command, args] of [
    ['kubernaut-audit', ['--version']],
    ['kubernaut-datastorage', ['--help']],
  ] as const) {
    const built = existsSync(
      join(
        CHECKOUT,
        'packages',
        command === 'kubernaut-audit' ? 'audit-verifier' : 'datastorage-server',
        'build',
      ),
    );
    const r = await runIn(
      CHECKOUT,
      process.execPath,
      [npmCli(), 'exec', '--no', '--', command, ...args],
      {
        PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
      },
    );
    beforeBuild[command] = { ...r, built };
  }

  rmSync(TARBALLS, { recursive: true, force: true });
  mkdirSync(TARBALLS, { recursive: true });
  const packed = await npm(CHECKOUT, [
    'pack',
    '--json',
    '--pack-destination',
    TARBALLS,
    ...PUBLISHED.flatMap((p) => ['-w', p]),
  ]);
  // Lifecycle output (the builds) may precede the JSON.
  const json = /^\[\s*\{/m.exec(packed.stdout);
  const list = JSON.parse(packed.stdout.slice(json?.index ?? 0)) as PackResult[];
  packs = Object.fromEntries(list.map((p) => [p.filename, p]));
  tarballs = list.map((p) => join(TARBALLS, p.filename));

  for (const kind of ['esm', 'cjs', 'ts'] as const) apps[kind] = await installApp(kind, tarballs);
}, 20 * 60_000);

afterAll(async () => {
  await server?.close();
});

describe('from a clean checkout', () => {
  it('after npm ci, npx kubernaut-audit and npx kubernaut-datastorage work before anything is built', () => {
    expect(beforeBuild['kubernaut-audit']).toMatchObject({
      built: false,
      code: 0,
      stdout: '0.1.0\n',
    });
    expect(beforeBuild['kubernaut-datastorage']).toMatchObject({ built: false, code: 0 });
    expect(beforeBuild['kubernaut-datastorage']?.stdout).toContain('usage: kubernaut-datastorage');
  });

  it("`npm run pack:packages` (the README's way to get the tarballs) packs exactly the published packages", () => {
    const script = (
      JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts['pack:packages'];
    const packed = [...(script ?? '').matchAll(/-w (\S+)/g)].map((m) => m[1]);
    expect(packed.sort()).toEqual([...PUBLISHED].sort());
    const publishable = readdirSync(join(REPO_ROOT, 'packages'))
      .map((d) => `packages/${d}`)
      .filter((d) => !JSON.parse(readFileSync(join(REPO_ROOT, d, 'package.json'), 'utf8')).private);
    expect(publishable.sort()).toEqual([...PUBLISHED].sort());
  });

  it('npm pack builds every package (prepack): each tarball has its build, types, bin, LICENSE and README', () => {
    expect(Object.keys(packs)).toHaveLength(PUBLISHED.length);
    for (const pkg of PUBLISHED) {
      const name = JSON.parse(readFileSync(join(REPO_ROOT, pkg, 'package.json'), 'utf8'))
        .name as string;
      const pack = Object.values(packs).find((p) =>
        p.filename.startsWith(name.replace('@', '').replace('/', '-')),
      );
      expect(pack, pkg).toBeDefined();
      const files = new Set(pack?.files.map((f) => f.path));
      for (const f of [
        'package.json',
        'LICENSE',
        'README.md',
        'build/esm/index.js',
        'build/esm/index.d.ts',
        'build/cjs/index.js',
        'build/cjs/index.d.ts',
        'build/cjs/package.json',
        ...(BINS[pkg] ? [BINS[pkg], 'build/esm/bin.js'] : []),
      ]) {
        expect(files.has(f), `${pkg}: ${f}`).toBe(true);
      }
      expect([...files].some((f) => f.startsWith('test/'))).toBe(false);
    }
  });
});

describe('installed together into applications with the current OpenTelemetry SDK', () => {
  it('one copy of each OpenTelemetry SDK package serves our packages and sdk-node', () => {
    for (const kind of ['esm', 'cjs', 'ts']) {
      const dir = apps[kind] as string;
      for (const name of [
        '@opentelemetry/sdk-node',
        '@opentelemetry/sdk-logs',
        '@opentelemetry/core',
        '@opentelemetry/resources',
        '@opentelemetry/sdk-metrics',
      ]) {
        expect(installedCopies(dir, name), `${kind}: ${name}`).toHaveLength(1);
      }
    }
  });

  for (const kind of ['esm', 'cjs', 'ts'] as const) {
    it(`the ${kind === 'esm' ? 'ESM' : kind === 'cjs' ? 'CommonJS' : 'TypeScript'} application delivers audit events into DataStorage`, async () => {
      const dir = apps[kind] as string;
      let entry = kind === 'esm' ? 'app.mjs' : 'app.cjs';
      if (kind === 'ts') {
        const tsc = await runIn(dir, process.execPath, [
          join(dir, 'node_modules/typescript/bin/tsc'),
          '-p',
          '.',
        ]);
        expect(tsc.stdout + tsc.stderr, 'tsc with skipLibCheck: false').toBe('');
        expect(tsc.code).toBe(0);
        entry = 'dist/app.js';
      }
      const correlationId = `rr-packaging-${kind}-${Date.now()}`;
      const r = await runApp(dir, process.execPath, entry, 'spool', correlationId);
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ code: 0, stdout: 'shut down\n' });
      const { data } = await queryEvents(server.url, { correlation_id: correlationId });
      expect(data).toHaveLength(3);
      expect(data.every((e) => e.actor_id === 'packaging-app')).toBe(true);

      // The auditor's command, from the installed tarball.
      const verify = await runIn(
        dir,
        process.execPath,
        [
          npmCli(),
          'exec',
          '--no',
          '--',
          'kubernaut-audit',
          'verify',
          '--url',
          server.url,
          '--since',
          '10m',
          '--correlation-id',
          correlationId,
        ],
        { PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` },
      );
      expect(verify.stdout).toContain('Audit trail verification COMPLETE');
      expect(verify.code).toBe(0);
    });
  }

  it(`on Node.js ${OLDEST_NODE}, the oldest the packages support, the ESM and CommonJS applications deliver too, with nothing on stderr`, async () => {
    const bin = await node22();
    for (const kind of ['esm', 'cjs'] as const) {
      const dir = apps[kind] as string;
      const correlationId = `rr-packaging-node22-${kind}-${Date.now()}`;
      const entry = kind === 'esm' ? 'app.mjs' : 'app.cjs';
      const r = await runApp(dir, bin, entry, 'spool-node22', correlationId);
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ code: 0, stdout: 'shut down\n' });
      const { data } = await queryEvents(server.url, { correlation_id: correlationId });
      expect(data).toHaveLength(3);
    }
  });

  // What the README says about Node.js 20: npm there picks the newest @opentelemetry/sdk-node
  // that still supports Node 20 (0.2xx), whose peer range of @opentelemetry/api excludes ours.
  it('on Node.js 20, npm refuses the install with a peer-dependency conflict over @opentelemetry/api (ERESOLVE)', async () => {
    const dir = join(APPS, 'node20-install');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app-node20', private: true }));
    const r = await runIn(dir, await node20(), [
      npmCli(),
      'install',
      '--dry-run',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...tarballs,
      '@opentelemetry/api',
      '@opentelemetry/sdk-node',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERESOLVE');
    expect(r.stderr).toMatch(
      /peer @opentelemetry\/api@"[^"]*<1\.10\.0" from @opentelemetry\/sdk-node@0\./,
    );
  });

  it('on Node.js 20 the application is told which Node.js it needs', async () => {
    const dir = apps.esm as string;
    const correlationId = `rr-packaging-node20-${Date.now()}`;
    const r = await runApp(dir, await node20(), 'app.mjs', 'spool-node20', correlationId);
    expect(r.stderr).toMatch(
      /Node\.js 20\.\d+\.\d+ is not supported: @kubernaut\/exporter-kubernaut-audit and OpenTelemetry SDK 3\.x need Node\.js >= 22\.15\.0/,
    );
  });
});
