// SPDX-License-Identifier: Apache-2.0
/*
 * A loopback HTTP endpoint that records what OTLP exporters POST (headers and raw body) and
 * answers 200 with an empty ExportLogsServiceResponse. Used to look at real SDK exporter output.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface CapturedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as sent (possibly gzip). */
  raw: Buffer;
  /** The body after Content-Encoding was undone. */
  body: Buffer;
}

export interface OtlpCapture {
  url: string;
  requests: CapturedRequest[];
  close(): Promise<void>;
}

export async function startOtlpCapture(): Promise<OtlpCapture> {
  const requests: CapturedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      requests.push({ path: req.url ?? '', headers: req.headers, raw, body });
      const json = String(req.headers['content-type']).startsWith('application/json');
      res.writeHead(200, { 'Content-Type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
