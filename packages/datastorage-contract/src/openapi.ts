// SPDX-License-Identifier: Apache-2.0
/*
 * Full validation of an AuditEventRequest against the DataStorage OpenAPI 3.0.3 spec
 * (DESIGN §5). The envelope is checked against `AuditEventRequest` with its `event_data`
 * oneOf replaced by `type: object`; `event_data` is then checked against the one payload
 * schema that the discriminator mapping names for `event_data.event_type` — never by
 * trying every oneOf branch. Payload schemas are compiled lazily, once each.
 */
import { readFileSync, statSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsImport, { type FormatsPlugin } from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import type { ContractViolation } from './validate.ts';

// ajv-formats is CommonJS with a `default` property: take whichever this module system gives.
const addFormats = ((addFormatsImport as unknown as { default?: FormatsPlugin }).default ??
  addFormatsImport) as FormatsPlugin;

const SCHEMA_REF_PREFIX = '#/components/schemas/';
const SPEC_ID = 'kubernaut:datastorage-openapi';
const ENVELOPE_SCHEMA = 'AuditEventRequest';
/** At most this many schema errors are reported per event. */
const MAX_REPORTED_ERRORS = 20;
/** OpenAPI keywords that are not JSON Schema and carry no validation meaning. */
const DROPPED_KEYWORDS = new Set(['example', 'discriminator', 'xml', 'externalDocs']);
/** Keywords whose value is a map from names to schemas (names are not keywords). */
const SCHEMA_MAP_KEYWORDS = new Set(['properties', 'patternProperties', 'definitions']);

type SchemaNode = Record<string, unknown>;

function isObject(v: unknown): v is SchemaNode {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Rewrites one OpenAPI 3.0 schema object into JSON Schema draft-07 as Ajv reads it:
 * `nullable: true` becomes a `null` type (and a `null` enum member), component `$ref`s
 * point into `#/definitions`, boolean `exclusiveMinimum/Maximum` become numeric, and
 * documentation-only keywords are dropped.
 */
function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!isObject(node)) return node;
  const out: SchemaNode = {};
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (DROPPED_KEYWORDS.has(key) || key.startsWith('x-') || key === 'nullable') continue;
    if (key === '$ref' && typeof value === 'string' && value.startsWith(SCHEMA_REF_PREFIX)) {
      out.$ref = `#/definitions/${value.slice(SCHEMA_REF_PREFIX.length)}`;
    } else if (SCHEMA_MAP_KEYWORDS.has(key) && isObject(value)) {
      const map: SchemaNode = {};
      for (const name of Object.keys(value)) {
        Object.defineProperty(map, name, {
          value: toJsonSchema(value[name]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      out[key] = map;
    } else if (key === 'enum' || key === 'required' || key === 'default' || key === 'const') {
      out[key] = value;
    } else {
      out[key] = toJsonSchema(value);
    }
  }
  for (const bound of ['Minimum', 'Maximum'] as const) {
    const ex = node[`exclusive${bound}`];
    const limit = node[bound.toLowerCase()];
    if (typeof ex === 'boolean') {
      delete out[`exclusive${bound}`];
      if (ex && typeof limit === 'number') {
        out[`exclusive${bound}`] = limit;
        delete out[bound.toLowerCase()];
      }
    }
  }
  if (node.nullable === true) {
    if (typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    } else if (out.type === undefined) {
      return { anyOf: [{ type: 'null' }, out] };
    }
  }
  return out;
}

/** `/event_data/items/0/name` → `event_data.items[0].name`. */
function readablePath(instancePath: string, prefix: string): string {
  let path = prefix;
  if (instancePath.length === 0) return path;
  for (const raw of instancePath.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) path += `[${seg}]`;
    else path += path.length === 0 ? seg : `.${seg}`;
  }
  return path;
}

function describe(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `must have required property '${String(params.missingProperty)}'`;
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'additionalProperties':
      return `must not have additional property '${String(params.additionalProperty)}'`;
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

/** Options of {@link OpenApiValidator}. */
export interface OpenApiValidatorOptions {
  /** Where the document came from, for error messages. */
  source?: string;
}

/**
 * Validates AuditEventRequests against the DataStorage OpenAPI document: the envelope
 * against `AuditEventRequest`, `event_data` against the payload schema that the
 * discriminator mapping names for its `event_type`.
 */
export class OpenApiValidator {
  private readonly _ajv: Ajv;
  private readonly _mapping: ReadonlyMap<string, string>;
  private readonly _eventTypes: ReadonlySet<string>;
  private readonly _envelope: ValidateFunction;
  private readonly _payloads = new Map<string, ValidateFunction | Error>();

  /** Reads and compiles the OpenAPI YAML (or JSON) file at `path`. Throws a clear error when it cannot. */
  static fromFile(path: string): OpenApiValidator {
    let text: string;
    try {
      // A FIFO would block the read, a device such as /dev/zero never end it.
      if (!statSync(path).isFile()) throw new Error('not a regular file');
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read DataStorage OpenAPI spec ${path}: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text, { maxAliasCount: 1000 });
    } catch (err) {
      throw new Error(`cannot parse DataStorage OpenAPI spec ${path}: ${(err as Error).message}`);
    }
    return new OpenApiValidator(doc, { source: path });
  }

  /** Builds a validator from an already parsed OpenAPI document. Throws when it is not usable. */
  static fromDocument(doc: unknown, options: OpenApiValidatorOptions = {}): OpenApiValidator {
    return new OpenApiValidator(doc, options);
  }

  private constructor(doc: unknown, options: OpenApiValidatorOptions) {
    const source = options.source ?? 'OpenAPI document';
    const schemas = isObject(doc) && isObject(doc.components) ? doc.components.schemas : undefined;
    if (!isObject(schemas) || !isObject(schemas[ENVELOPE_SCHEMA])) {
      throw new Error(`${source}: no components.schemas.${ENVELOPE_SCHEMA}`);
    }
    const envelope = schemas[ENVELOPE_SCHEMA] as SchemaNode;
    const eventData = isObject(envelope.properties) ? envelope.properties.event_data : undefined;
    const discriminator = isObject(eventData) ? eventData.discriminator : undefined;
    const mapping = isObject(discriminator) ? discriminator.mapping : undefined;
    if (!isObject(mapping)) {
      throw new Error(
        `${source}: ${ENVELOPE_SCHEMA}.properties.event_data.discriminator.mapping is missing`,
      );
    }
    const byType = new Map<string, string>();
    for (const [eventType, ref] of Object.entries(mapping)) {
      if (typeof ref !== 'string') continue;
      const name = ref.startsWith(SCHEMA_REF_PREFIX) ? ref.slice(SCHEMA_REF_PREFIX.length) : ref;
      if (!isObject(schemas[name])) {
        throw new Error(`${source}: event type ${eventType} maps to unknown schema ${ref}`);
      }
      byType.set(eventType, name);
    }
    this._mapping = byType;
    this._eventTypes = new Set(byType.keys());

    const definitions: SchemaNode = {};
    for (const name of Object.keys(schemas)) {
      Object.defineProperty(definitions, name, {
        value: toJsonSchema(schemas[name]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const envelopeSchema = definitions[ENVELOPE_SCHEMA] as SchemaNode;
    envelopeSchema.properties = {
      ...(envelopeSchema.properties as SchemaNode),
      event_data: { type: 'object' },
    };

    this._ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    addFormats(this._ajv);
    this._ajv.addSchema({ $id: SPEC_ID, definitions });
    const compiled = this._ajv.getSchema(`${SPEC_ID}#/definitions/${ENVELOPE_SCHEMA}`);
    if (compiled === undefined) throw new Error(`${source}: cannot compile ${ENVELOPE_SCHEMA}`);
    this._envelope = compiled;
  }

  /** The event types of the discriminator mapping (the authoritative list). */
  eventTypes(): ReadonlySet<string> {
    return this._eventTypes;
  }

  /** The payload schema name the mapping gives for `eventType`, e.g. `GatewayAuditPayload`. */
  schemaNameFor(eventType: string): string | undefined {
    return this._mapping.get(eventType);
  }

  /**
   * Validates one AuditEventRequest. Returns the violations found (empty when valid);
   * `field` is the top-level request field at fault. Never throws.
   */
  validate(event: unknown): ContractViolation[] {
    const out: ContractViolation[] = [];
    try {
      if (!this._envelope(event)) this._collect(this._envelope.errors, '', out);
      if (!isObject(event)) return out;
      const data = event.event_data;
      if (!isObject(data)) return out; // reported by the envelope schema
      const eventType = data.event_type;
      if (typeof eventType !== 'string') {
        out.push({
          field: 'event_data',
          reason: 'schema',
          message: "event_data must have required property 'event_type' (the discriminator)",
        });
        return out;
      }
      const name = this._mapping.get(eventType);
      if (name === undefined) {
        out.push({
          field: 'event_type',
          reason: 'unknown_event_type',
          message: `event type '${eventType.slice(0, 100)}' is not in the spec's discriminator mapping`,
        });
        return out;
      }
      const payload = this._payload(name);
      if (payload instanceof Error) {
        out.push({
          field: 'event_data',
          reason: 'schema',
          message: `schema ${name} cannot be compiled: ${payload.message}`,
        });
      } else if (!payload(data)) {
        this._collect(payload.errors, '/event_data', out);
      }
    } catch (err) {
      out.push({
        field: '',
        reason: 'schema',
        message: `event cannot be validated: ${(err as Error)?.message ?? String(err)}`,
      });
    }
    return out;
  }

  private _payload(name: string): ValidateFunction | Error {
    let fn = this._payloads.get(name);
    if (fn === undefined) {
      try {
        fn =
          this._ajv.getSchema(`${SPEC_ID}#/definitions/${name}`) ??
          new Error(`schema ${name} not found`);
      } catch (err) {
        fn = err instanceof Error ? err : new Error(String(err));
      }
      this._payloads.set(name, fn);
    }
    return fn;
  }

  private _collect(
    errors: ErrorObject[] | null | undefined,
    prefix: string,
    out: ContractViolation[],
  ): void {
    if (!errors) return;
    let n = 0;
    for (const e of errors) {
      if (n++ >= MAX_REPORTED_ERRORS) {
        out.push({
          field: prefix === '' ? '' : 'event_data',
          reason: 'schema',
          message: `${errors.length - MAX_REPORTED_ERRORS} more schema errors`,
        });
        break;
      }
      const instancePath = prefix + e.instancePath;
      let field = instancePath.split('/')[1] ?? '';
      if (field === '' && e.keyword === 'required') {
        field = String((e.params as { missingProperty?: unknown }).missingProperty ?? '');
      }
      const path = readablePath(instancePath, '') || '(event)';
      out.push({ field, reason: 'schema', message: `${path} ${describe(e)}` });
    }
  }
}
