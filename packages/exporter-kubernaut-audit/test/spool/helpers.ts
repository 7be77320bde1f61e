/* Helpers of the spool tests: temp directories, segment files, deterministic payloads. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs: string[] = [];

/** A fresh temp directory, removed by `cleanupDirs`. */
export function tempDir(prefix = 'spool-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export function cleanupDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Segment file paths of a spool directory, oldest first. */
export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .map((n) => join(dir, n));
}

/** A payload that names its index and has `size` characters (multi-byte chars included). */
export function payload(i: number, size = 200): string {
  const head = `{"i":${i},"s":"é€😀`;
  return `${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`;
}

/** Index encoded by `payload`. */
export function payloadIndex(p: string): number {
  return (JSON.parse(p) as { i: number }).i;
}
