// SPDX-License-Identifier: Apache-2.0
/*
 * The Node.js this package (and OpenTelemetry SDK 3.x) needs. npm on an older Node only prints
 * EBADENGINE warnings, or a peer-dependency error that never mentions Node; at run time the
 * first symptom would be an obscure failure deep in the spool. So the processor and the exporter
 * check once per process and say it plainly, as a diag error (on stderr when no diag logger is
 * registered). They still start: nothing here throws.
 */
import type { ComponentDiag } from '../measure/diag.ts';

/** The oldest Node.js supported (as `engines.node` in package.json says). */
export const MIN_NODE_VERSION = '22.15.0';

/** Whether `version` (`22.15.0`, `v20.20.2`) is at least MIN_NODE_VERSION. */
export function isSupportedNodeVersion(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  const [minMajor = 0, minMinor = 0] = MIN_NODE_VERSION.split('.').map(Number);
  return major > minMajor || (major === minMajor && minor >= minMinor);
}

let checked = false;

/** Reports an unsupported Node.js once per process. Returns whether the running one is supported. */
export function checkNodeVersion(
  diag: ComponentDiag,
  version: string = process.versions.node,
): boolean {
  const ok = isSupportedNodeVersion(version);
  if (!ok && !checked) {
    diag.error(
      `Node.js ${version} is not supported: @kubernaut/exporter-kubernaut-audit and OpenTelemetry SDK 3.x need Node.js >= ${MIN_NODE_VERSION}. Audit records may not be spooled or delivered; upgrade Node.js`,
    );
  }
  checked = true;
  return ok;
}
