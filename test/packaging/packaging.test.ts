// SPDX-License-Identifier: Apache-2.0
/*
 * ESM and CommonJS consumers of the built packages (DESIGN §3): `npm test` builds before running
 * vitest, so these run the real build output, without the `@kubernaut/source` condition, in fresh
 * Node processes, and type-check a consumer of each kind against the emitted declarations.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO_ROOT, specPath } from '@kubernaut/test-kit';
import { afterAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');

const PACKAGES: Record<string, string[]> = {
  '@kubernaut/audit-semantic-conventions': [
    'ATTR_AUDIT_EVENT_CATEGORY',
    'AUDIT_EVENT_OUTCOME_VALUE_SUCCESS',
  ],
  '@kubernaut/exporter-kubernaut-audit': ['AuditLogRecordProcessor', 'KubernautAuditExporter'],
  '@kubernaut/exporter-kubernaut-audit/experimental': ['deliverEvents', 'openSpool'],
  '@kubernaut/exporter-kubernaut-audit/logging': [
    'excludeAuditLines',
    'excludeAuditFormat',
    'excludeAuditStream',
  ],
  '@kubernaut/audit-provenance': ['canonicalize', 'computeProvenanceHash'],
  '@kubernaut/audit-verifier': ['analyze', 'main'],
  '@kubernaut/datastorage-server': ['startDataStorageServer'],
  '@kubernaut/audit-otlp-bridge': ['startOtlpBridge'],
  '@kubernaut/datastorage-contract': ['validateAuditEventRequest', 'MAX_BATCH_EVENTS'],
  '@kubernaut/datastorage-contract/openapi': ['OpenApiValidator'],
  '@kubernaut/datastorage-contract/management': [
    'startManagementServer',
    'createPrometheusMetrics',
  ],
};

const node = (args: string[]) =>
  execFileSync(process.execPath, args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();

describe('built packages', () => {
  for (const [name, exportsToCheck] of Object.entries(PACKAGES)) {
    it(`${name} loads with require() and import, with the same exports`, () => {
      const keys = JSON.stringify(exportsToCheck);
      const cjs = node([
        '-e',
        `const m = require(${JSON.stringify(name)}); console.log(JSON.stringify(${keys}.map(k => typeof m[k])))`,
      ]);
      const esm = node([
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(name)}); console.log(JSON.stringify(${keys}.map(k => typeof m[k])))`,
      ]);
      expect(JSON.parse(cjs)).not.toContain('undefined');
      expect(esm).toBe(cjs);
      const resolved = node(['-e', `console.log(require.resolve(${JSON.stringify(name)}))`]);
      expect(resolved).toMatch(/\/build\/cjs\//);
    });
  }

  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  // `openapiSpec` loads @kubernaut/datastorage-contract/openapi (ajv, yaml) only when set, from
  // either build: an event type outside the spec's mapping passes the contract rules alone, so it
  // is dead-lettered without a request only when the full validation really runs.
  for (const kind of ['module', 'commonjs'] as const) {
    it(`openapiSpec validates fully from the ${kind === 'module' ? 'ESM' : 'CommonJS'} build`, () => {
      const tmp = mkdtempSync(join(REPO_ROOT, 'node_modules', '.openapi-'));
      dirs.push(tmp);
      const load =
        kind === 'module'
          ? "const { KubernautAuditExporter } = await import('@kubernaut/exporter-kubernaut-audit'); const { LoggerProvider } = await import('@opentelemetry/sdk-logs');"
          : "const { KubernautAuditExporter } = require('@kubernaut/exporter-kubernaut-audit'); const { LoggerProvider } = require('@opentelemetry/sdk-logs');";
      const script = [
        kind === 'module' ? '' : '(async () => {',
        load,
        "const exporter = new KubernautAuditExporter({ url: 'http://127.0.0.1:1', openapiSpec: process.env.SPEC, timeoutMillis: 2000 });",
        'const records = [];',
        'const provider = new LoggerProvider({ processors: [{ onEmit: (r) => records.push(r), forceFlush: async () => {}, shutdown: async () => {} }] });',
        "provider.getLogger('t').emit({ eventName: 'no.such.type', body: { k: 'v' }, attributes: { 'audit.event.category': 'gateway', 'audit.event.action': 'a', 'audit.event.outcome': 'success', 'audit.correlation.id': 'c' } });",
        'const result = await new Promise((resolve) => exporter.export(records, resolve));',
        'await exporter.shutdown();',
        'console.log(JSON.stringify({ code: result.code, error: result.error?.message }));',
        kind === 'module' ? '' : '})();',
      ].join('\n');
      const out = execFileSync(
        process.execPath,
        kind === 'module' ? ['--input-type=module', '-e', script] : ['-e', script],
        {
          cwd: REPO_ROOT,
          encoding: 'utf8',
          env: { ...process.env, SPEC: specPath(), TMPDIR: tmp, OTEL_SERVICE_NAME: 'packaging' },
        },
      ).trim();
      expect(JSON.parse(out)).toEqual({ code: 0 });
      const deadLetters = readFileSync(
        join(tmp, 'kubernaut-audit', 'packaging', 'dead-letter.jsonl'),
        'utf8',
      );
      expect(deadLetters).toMatch(/not in the spec's discriminator mapping/);
    });
  }

  for (const kind of ['module', 'commonjs'] as const) {
    it(`type-checks a ${kind === 'module' ? 'ESM' : 'CommonJS'} TypeScript consumer against the declarations`, () => {
      const dir = mkdtempSync(join(REPO_ROOT, 'node_modules', '.consumer-'));
      dirs.push(dir);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: kind }));
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            types: ['node'],
            typeRoots: [join(REPO_ROOT, 'node_modules/@types')],
          },
          files: ['consumer.ts'],
        }),
      );
      writeFileSync(
        join(dir, 'consumer.ts'),
        [
          "import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';",
          "import { AuditLogRecordProcessor, KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';",
          "import { MAX_BATCH_EVENTS, type AuditEventRequest } from '@kubernaut/datastorage-contract';",
          "import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';",
          "import { canonicalize } from '@kubernaut/audit-provenance';",
          "import { analyze, main } from '@kubernaut/audit-verifier';",
          "import { startDataStorageServer, type DataStorageServerOptions } from '@kubernaut/datastorage-server';",
          "import { startOtlpBridge } from '@kubernaut/audit-otlp-bridge';",
          "import { excludeAuditLines, excludeAuditFormat, excludeAuditStream } from '@kubernaut/exporter-kubernaut-audit/logging';",
          "const serverOptions: DataStorageServerOptions = { port: 0, storage: { kind: 'pglite' } };",
          'export const everyEntry = [OpenApiValidator, canonicalize, analyze, main, startDataStorageServer, startOtlpBridge, excludeAuditLines, excludeAuditFormat, excludeAuditStream, serverOptions];',
          "const exporter = new KubernautAuditExporter({ url: 'http://127.0.0.1:1' });",
          'const processor = new AuditLogRecordProcessor({ exporter, spool: false });',
          "const key: 'audit.event.category' = ATTR_AUDIT_EVENT_CATEGORY;",
          'const max: number = MAX_BATCH_EVENTS;',
          'const e: Partial<AuditEventRequest> = { event_type: key };',
          'export { processor, max, e };',
        ].join('\n'),
      );
      try {
        execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
      } catch (err) {
        throw new Error(`tsc failed:\n${(err as { stdout?: string }).stdout ?? String(err)}`);
      }
    });
  }
});
