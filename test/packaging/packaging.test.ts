/*
 * ESM and CommonJS consumers of the built packages (DESIGN §3): `npm test` builds before running
 * vitest, so these run the real build output, without the `@kubernaut/source` condition, in fresh
 * Node processes, and type-check a consumer of each kind against the emitted declarations.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO_ROOT } from '@kubernaut/test-kit';
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
  '@kubernaut/audit-provenance': ['canonicalize', 'computeProvenanceHash'],
  '@kubernaut/audit-verifier': ['analyze', 'main'],
  '@kubernaut/datastorage-server': ['startDataStorageServer'],
  '@kubernaut/audit-otlp-bridge': ['startOtlpBridge'],
  '@kubernaut/datastorage-contract': ['validateAuditEventRequest', 'MAX_BATCH_EVENTS'],
  '@kubernaut/datastorage-contract/openapi': ['OpenApiValidator'],
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
          "const exporter = new KubernautAuditExporter({ url: 'http://127.0.0.1:1' });",
          'const processor = new AuditLogRecordProcessor({ exporter, spool: false });',
          "const key: 'audit.event.category' = ATTR_AUDIT_EVENT_CATEGORY;",
          'const max: number = MAX_BATCH_EVENTS;',
          'const e: Partial<AuditEventRequest> = { event_type: key };',
          'export { processor, max, e };',
        ].join('\n'),
      );
      execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
    });
  }
});
