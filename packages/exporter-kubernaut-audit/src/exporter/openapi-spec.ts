// SPDX-License-Identifier: Apache-2.0
/*
 * Full OpenAPI validation for `openapiSpec` (DESIGN §5). The validator lives in the optional
 * `@kubernaut/datastorage-contract/openapi` subpath, whose libraries (ajv, ajv-formats, yaml)
 * are optional peer dependencies: applications that never set `openapiSpec` do not install
 * them. The subpath is imported only when an exporter is given a spec, in the background,
 * once per spec file and process; nothing here throws.
 */
import type { ContractViolation } from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';

/** What the exporter uses of an `OpenApiValidator`. */
export interface SpecValidator {
  validate(event: unknown): ContractViolation[];
}

/**
 * What the exporter uses of the `@kubernaut/datastorage-contract/openapi` module (structural:
 * the ESM and CommonJS builds see the same module through different declaration files).
 */
export interface OpenApiModule {
  OpenApiValidator: { fromFile(path: string): SpecValidator };
}

/** Imports the OpenAPI module (tests replace it). */
export type OpenApiLoader = () => Promise<OpenApiModule>;

/** What became of a spec file. */
export type SpecState =
  | { kind: 'ready'; validator: SpecValidator }
  /** The file cannot be read or compiled: the contract rules alone apply (logged). */
  | { kind: 'unusable'; message: string }
  /** The validation libraries are not installed: a configuration error. */
  | { kind: 'missing-libraries'; message: string };

/** The optional peer dependencies the OpenAPI subpath needs. */
export const OPENAPI_PEER_DEPENDENCIES = ['ajv', 'ajv-formats', 'yaml'] as const;

const importOpenApi: OpenApiLoader = () => import('@kubernaut/datastorage-contract/openapi');

const shared = new Map<string, Promise<SpecState>>();

function isModuleNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

async function load(path: string, loader: OpenApiLoader): Promise<SpecState> {
  let mod: OpenApiModule;
  try {
    mod = await loader();
  } catch (err) {
    const why = errorText(err);
    return {
      kind: 'missing-libraries',
      message: isModuleNotFound(err)
        ? `openapiSpec is set but its validation libraries are not installed: install ${OPENAPI_PEER_DEPENDENCIES.join(', ')} (npm install ${OPENAPI_PEER_DEPENDENCIES.join(' ')}) (${why})`
        : `openapiSpec is set but @kubernaut/datastorage-contract/openapi cannot be loaded: ${why}`,
    };
  }
  try {
    return { kind: 'ready', validator: mod.OpenApiValidator.fromFile(path) };
  } catch (err) {
    return { kind: 'unusable', message: errorText(err) };
  }
}

/**
 * Loads the validator of the spec at `path`: shared by the exporters of a process when the
 * default loader is used. Never rejects.
 */
export function loadSpec(path: string, loader?: OpenApiLoader): Promise<SpecState> {
  if (loader !== undefined) return load(path, loader);
  let p = shared.get(path);
  if (p === undefined) {
    p = load(path, importOpenApi);
    shared.set(path, p);
  }
  return p;
}
