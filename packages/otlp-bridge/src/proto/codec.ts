// SPDX-License-Identifier: Apache-2.0
/*
 * Decoding of OTLP/HTTP logs requests and encoding of responses, protobuf and JSON, with
 * protobufjs over the schema in otlp-logs.proto.ts. Both encodings decode to the same plain
 * object model (`OtlpExportLogsRequest`): int64/fixed64 as bigint, bytes as Uint8Array,
 * enums as numbers.
 *
 * A body is checked before it is decoded (wire types and message count for protobuf, object and
 * array count for JSON), so that a request over `maxValues` is refused before it allocates.
 */
import { isUtf8 } from 'node:buffer';
import { errorText } from '@kubernaut/datastorage-contract/config';
import Long from 'long';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import { scanJson } from './json-scan.ts';
import { OTLP_LOGS_PROTO_SOURCES } from './otlp-logs.proto.ts';
import { checkWireTypes, DecodeLimitError } from './wire-check.ts';

/** `common.v1.AnyValue`: exactly one of the value fields is set (none for an empty value). */
export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: bigint;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: Uint8Array;
}

export interface OtlpKeyValue {
  key?: string;
  value?: OtlpAnyValue;
}

export interface OtlpLogRecord {
  timeUnixNano?: bigint;
  observedTimeUnixNano?: bigint;
  severityNumber?: number;
  severityText?: string;
  body?: OtlpAnyValue;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
  flags?: number;
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  eventName?: string;
}

export interface OtlpScopeLogs {
  scope?: {
    name?: string;
    version?: string;
    attributes?: OtlpKeyValue[];
    droppedAttributesCount?: number;
  };
  logRecords?: OtlpLogRecord[];
  schemaUrl?: string;
}

export interface OtlpResourceLogs {
  resource?: { attributes?: OtlpKeyValue[]; droppedAttributesCount?: number };
  scopeLogs?: OtlpScopeLogs[];
  schemaUrl?: string;
}

export interface OtlpExportLogsRequest {
  resourceLogs?: OtlpResourceLogs[];
}

/** Wire encodings of OTLP/HTTP. */
export type OtlpEncoding = 'protobuf' | 'json';

/**
 * The request body could not be decoded as an `ExportLogsServiceRequest`: `invalid` (malformed,
 * → 400), or `too_large` (it would decode into more than `maxValues`, → 413).
 */
export class OtlpDecodeError extends Error {
  readonly kind: 'invalid' | 'too_large';

  constructor(
    message: string,
    options?: { cause?: unknown; kind?: 'invalid' | 'too_large' | undefined },
  ) {
    super(message, options);
    this.name = 'OtlpDecodeError';
    this.kind = options?.kind ?? 'invalid';
  }
}

/** Limits of decoding. */
export interface OtlpDecodeOptions {
  /**
   * Most values a body may decode into: protobuf messages below the request (resource and scope
   * logs, log records, attributes, AnyValues…), or JSON objects and arrays [unbounded].
   */
  maxValues?: number;
}

/** A limit error as `too_large`, anything else as `invalid` (its message prefixed with `what`). */
function decodeError(what: string, err: unknown): OtlpDecodeError {
  if (err instanceof DecodeLimitError) {
    return new OtlpDecodeError(`OTLP request too large: ${err.message}`, {
      cause: err,
      kind: 'too_large',
    });
  }
  return new OtlpDecodeError(`${what}: ${errorText(err)}`, { cause: err });
}

interface Types {
  request: protobuf.Type;
  response: protobuf.Type;
  status: protobuf.Type;
}

let types: Types | undefined;

function loadTypes(): Types {
  if (types) return types;
  /*
   * 64-bit integers (timestamps) decode exactly only when protobufjs has long.js. It finds it by
   * itself through require('long'), which fails under ESM-first resolution (e.g. `--conditions
   * import`) and would silently round nanoseconds; so it is given explicitly, as protobufjs
   * documents for ES module environments.
   */
  if (typeof protobuf.util.Long !== 'function') {
    protobuf.util.Long = Long;
    protobuf.configure();
  }
  const root = new protobuf.Root();
  for (const source of OTLP_LOGS_PROTO_SOURCES) protobuf.parse(source, root, { keepCase: false });
  root.resolveAll();
  freezeFullNames(root);
  types = {
    request: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
    response: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
    status: root.lookupType('google.rpc.Status'),
  };
  return types;
}

/**
 * protobufjs's reader over a Buffer, with its strings decoded by Node's UTF-8 decoder into flat
 * strings. protobufjs decodes a proto3 string shorter than 64 bytes (most keys and values of a
 * log record) by concatenating characters in JavaScript, which builds a rope of small pieces:
 * every later use (an object key, JSON.stringify, a comparison) flattens it again. Invalid UTF-8
 * is refused as protobufjs refuses it (proto3 strings are UTF-8): Node's decoder replaces it
 * with U+FFFD, so a string holding U+FFFD has its bytes checked.
 */
class NodeBufferReader extends protobuf.BufferReader {
  declare buf: Buffer;

  override stringVerify(): string {
    const length = this.uint32();
    const start = this.pos;
    const end = start + length;
    if (end > this.len)
      throw new RangeError(`index out of range: ${start} + ${length} > ${this.len}`);
    this.pos = end;
    const text = this.buf.toString('utf8', start, end);
    if (text.includes('\uFFFD') && !isUtf8(this.buf.subarray(start, end))) {
      throw new TypeError('a string is not valid UTF-8');
    }
    return text;
  }
}

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Gives every reflection object of our schema its `fullName` as an own value. In protobufjs it is
 * a getter that walks up to the root and joins the names on each call, and the ProtoJSON reader
 * asks for it for every message and every scalar it reads (most of the CPU of an OTLP/JSON
 * request). The schema is resolved and never changes, so neither do the names.
 */
function freezeFullNames(ns: protobuf.NamespaceBase): void {
  for (const child of ns.nestedArray) {
    const named: protobuf.ReflectionObject[] = [child];
    if (child instanceof protobuf.Type) named.push(...child.fieldsArray, ...child.oneofsArray);
    for (const o of named) {
      Object.defineProperty(o, 'fullName', { value: o.fullName, enumerable: false });
    }
    if (child instanceof protobuf.Namespace) freezeFullNames(child);
  }
}

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: BigInt,
  enums: Number,
  defaults: false,
  arrays: false,
};

/** Decodes a binary protobuf `ExportLogsServiceRequest`. Throws `OtlpDecodeError`. */
export function decodeProtobufRequest(
  body: Uint8Array,
  options: OtlpDecodeOptions = {},
): OtlpExportLogsRequest {
  const { request } = loadTypes();
  try {
    // Checked before decoding: wire types, lengths, depth, and the count against maxValues.
    checkWireTypes(request, body, {
      ...(options.maxValues !== undefined && { maxMessages: options.maxValues }),
    });
    const message = request.decode(new NodeBufferReader(asBuffer(body)));
    return request.toObject(message, TO_OBJECT) as OtlpExportLogsRequest;
  } catch (err) {
    throw decodeError('invalid protobuf ExportLogsServiceRequest', err);
  }
}

const HEX_ID = /^[0-9a-fA-F]*$/;

/*
 * OTLP/JSON differs from the canonical protobuf JSON mapping in one place that matters here:
 * trace_id and span_id are hex strings, not base64. They are turned into base64 before the
 * canonical parser sees them; everything else (lowerCamelCase keys, int64 as string or number,
 * enums as integers, unknown fields ignored) is the canonical mapping.
 */
function hexIdsToBase64(json: unknown): void {
  if (json === null || typeof json !== 'object') return;
  const resourceLogs = (json as { resourceLogs?: unknown }).resourceLogs;
  if (!Array.isArray(resourceLogs)) return;
  for (const rl of resourceLogs) {
    const scopeLogs = rl && typeof rl === 'object' ? (rl as { scopeLogs?: unknown }).scopeLogs : [];
    if (!Array.isArray(scopeLogs)) continue;
    for (const sl of scopeLogs) {
      const records =
        sl && typeof sl === 'object' ? (sl as { logRecords?: unknown }).logRecords : [];
      if (!Array.isArray(records)) continue;
      for (const record of records) {
        if (!record || typeof record !== 'object') continue;
        const r = record as Record<string, unknown>;
        for (const key of ['traceId', 'spanId', 'trace_id', 'span_id']) {
          const v = r[key];
          if (typeof v !== 'string') continue;
          if (!HEX_ID.test(v) || v.length % 2 !== 0) {
            throw new OtlpDecodeError(`${key} is not a hex string`);
          }
          r[key] = Buffer.from(v, 'hex').toString('base64');
        }
      }
    }
  }
}

const SIXTEEN_DIGITS = /\d{16}/;

/*
 * OTLP/JSON allows int64 values (timestamps, intValue) as JSON numbers; JSON.parse would round
 * those above 2^53. Before parsing, integer literals of 16 or more digits outside strings are
 * turned into JSON strings with the same digits, which the canonical parser accepts for int64
 * (and double) fields. The scan only runs when the text has such a digit run at all.
 */
export function quoteLargeIntegers(text: string): string {
  if (!SIXTEEN_DIGITS.test(text)) return text;
  let out = '';
  let copiedTo = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip a string literal, escapes included.
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \\ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (
          (d >= 0x30 && d <= 0x39) ||
          d === 0x2e ||
          d === 0x65 ||
          d === 0x45 ||
          d === 0x2b ||
          d === 0x2d
        )
          i++;
        else break;
      }
      const token = text.slice(start, i);
      const digits = token.charCodeAt(0) === 0x2d ? token.length - 1 : token.length;
      if (digits >= 16 && /^-?\d+$/.test(token)) {
        out += `${text.slice(copiedTo, start)}"${token}"`;
        copiedTo = i;
      }
      continue;
    }
    i++;
  }
  return copiedTo === 0 ? text : out + text.slice(copiedTo);
}

/** Decodes an OTLP/JSON `ExportLogsServiceRequest` (UTF-8 text). Throws `OtlpDecodeError`. */
export function decodeJsonRequest(
  body: Uint8Array,
  options: OtlpDecodeOptions = {},
): OtlpExportLogsRequest {
  const { request } = loadTypes();
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // JSON text is UTF-8 (RFC 8259): invalid bytes are refused, as protobuf's strings are, rather
  // than replaced with U+FFFD and stored altered.
  if (!isUtf8(bytes)) throw new OtlpDecodeError('invalid JSON: the body is not valid UTF-8');
  let scan: ReturnType<typeof scanJson>;
  try {
    scan = scanJson(bytes, options.maxValues ?? Number.POSITIVE_INFINITY);
  } catch (err) {
    throw decodeError('invalid JSON', err);
  }
  let json: unknown;
  try {
    const text = bytes.toString('utf8');
    json = JSON.parse(scan.longDigitRuns ? quoteLargeIntegers(text) : text);
  } catch (err) {
    throw new OtlpDecodeError(`invalid JSON: ${errorText(err)}`, { cause: err });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new OtlpDecodeError('invalid OTLP/JSON: the body is not a JSON object');
  }
  hexIdsToBase64(json);
  try {
    const message = protojson.fromJson(request, json, { ignoreUnknownFields: true });
    return request.toObject(message, TO_OBJECT) as OtlpExportLogsRequest;
  } catch (err) {
    throw new OtlpDecodeError(`invalid OTLP/JSON ExportLogsServiceRequest: ${errorText(err)}`, {
      cause: err,
    });
  }
}

/** Decodes a request body in the given encoding. Throws `OtlpDecodeError`. */
export function decodeExportLogsRequest(
  body: Uint8Array,
  encoding: OtlpEncoding,
  options: OtlpDecodeOptions = {},
): OtlpExportLogsRequest {
  return encoding === 'protobuf'
    ? decodeProtobufRequest(body, options)
    : decodeJsonRequest(body, options);
}

/** `partial_success` of an `ExportLogsServiceResponse`. */
export interface OtlpPartialSuccess {
  rejectedLogRecords: number;
  errorMessage: string;
}

/** Encodes an `ExportLogsServiceResponse`; `partial_success` is left out when not given. */
export function encodeExportLogsResponse(
  partialSuccess: OtlpPartialSuccess | undefined,
  encoding: OtlpEncoding,
): Uint8Array {
  const { response } = loadTypes();
  const plain = partialSuccess
    ? {
        partialSuccess: {
          rejectedLogRecords: partialSuccess.rejectedLogRecords,
          errorMessage: partialSuccess.errorMessage,
        },
      }
    : {};
  if (encoding === 'protobuf') return response.encode(response.fromObject(plain)).finish();
  return Buffer.from(JSON.stringify(protojson.toJson(response, response.fromObject(plain))));
}

/** Decodes an `ExportLogsServiceResponse` (used by tests and clients). */
export function decodeExportLogsResponse(
  body: Uint8Array,
  encoding: OtlpEncoding,
): { partialSuccess?: { rejectedLogRecords?: bigint; errorMessage?: string } } {
  const { response } = loadTypes();
  const message =
    encoding === 'protobuf'
      ? response.decode(body)
      : protojson.fromJson(response, JSON.parse(Buffer.from(body).toString('utf8')), {
          ignoreUnknownFields: true,
        });
  return response.toObject(message, TO_OBJECT);
}

/** Encodes a `google.rpc.Status` error body (OTLP/HTTP failure responses). */
export function encodeStatus(code: number, message: string, encoding: OtlpEncoding): Uint8Array {
  const { status } = loadTypes();
  const msg = status.fromObject({ code, message });
  if (encoding === 'protobuf') return status.encode(msg).finish();
  return Buffer.from(JSON.stringify(protojson.toJson(status, msg)));
}

/** Encodes an `ExportLogsServiceRequest` from the plain object model (used by tests). */
export function encodeExportLogsRequest(request: OtlpExportLogsRequest): Uint8Array {
  const { request: type } = loadTypes();
  return type.encode(type.fromObject(request as Record<string, unknown>)).finish();
}
