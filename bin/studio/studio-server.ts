import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerApi } from './studio-api.js';
import { loadStudioAssets, type StudioAsset } from './studio-assets.js';
import { StudioRequestError } from './studio-params.js';
import type { StudioSource } from './studio-source.js';

/** Where the studio listens unless told otherwise: this machine only. */
export const DEFAULT_STUDIO_HOST = '127.0.0.1';
/** The default port (`--port 0` picks a free one). */
export const DEFAULT_STUDIO_PORT = 4477;

/**
 * Sent with every response. The interface builds its pages with DOM calls
 * and text nodes only, so the policy can forbid every inline script and
 * style, every other origin, and (Trusted Types) every HTML-parsing sink:
 * hostile agent data that slipped past the escaping would still not run.
 * No `Access-Control-*` header is ever sent: other origins cannot read a byte.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; '),
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** Options of `startStudio`. */
export interface StudioServerOptions {
  source: StudioSource;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** Port; default 4477, `0` for any free port. */
  port?: number;
  /** The secret in every URL; a fresh random one by default. */
  token?: string;
  /** Told about requests that failed on the server's side (500). */
  onError?: (error: unknown) => void;
}

/** A studio serving requests. */
export interface RunningStudio {
  /** The URL to open, token included. */
  url: string;
  host: string;
  port: number;
  token: string;
  server: Server;
  /** Stops listening and drops open connections (the location stays open: it is the caller's). */
  close(): Promise<void>;
}

/** A random token: 24 bytes, URL-safe. */
export function newStudioToken(): string {
  return randomBytes(24).toString('base64url');
}

function send(
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(body)),
    ...headers,
  });
  response.end(body);
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function sameSecret(given: string, token: Buffer): boolean {
  const bytes = Buffer.from(given, 'utf8');
  return bytes.length === token.length && timingSafeEqual(bytes, token);
}

/** The request handler: token first, then method, then asset or API route. */
export function studioHandler(
  source: StudioSource,
  assets: ReadonlyMap<string, StudioAsset>,
  token: string,
  onError: (error: unknown) => void = () => {},
): (request: IncomingMessage, response: ServerResponse) => void {
  const secret = Buffer.from(token, 'utf8');
  return (request, response) => {
    const url = new URL(request.url ?? '/', 'http://studio.invalid');
    const [, first = '', ...rest] = url.pathname.split('/');
    let given: string;
    try {
      given = decodeURIComponent(first);
    } catch {
      given = '';
    }
    if (!sameSecret(given, secret)) {
      send(
        response,
        401,
        'text/plain; charset=utf-8',
        'kode-store studio: this address needs the token; open the URL that `kode-store studio` printed.\n',
      );
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(
        response,
        405,
        'text/plain; charset=utf-8',
        'kode-store studio is read-only: only GET and HEAD.\n',
        {
          Allow: 'GET, HEAD',
        },
      );
      return;
    }
    if (rest.length === 0) {
      // `/<token>` → `/<token>/`, so the page's relative URLs carry the token.
      send(response, 308, 'text/plain; charset=utf-8', '', { Location: `/${first}/` });
      return;
    }
    const path = rest.join('/');
    if (path.startsWith('api/')) {
      answerApi(source, path.slice('api/'.length), url.searchParams).then(
        (value) => sendJson(response, 200, value),
        (error: unknown) => {
          if (error instanceof StudioRequestError) {
            sendJson(response, error.status, { error: { status: error.status, message: error.message } });
            return;
          }
          onError(error);
          const message = error instanceof Error ? error.message : String(error);
          sendJson(response, 500, { error: { status: 500, message } });
        },
      );
      return;
    }
    const asset = assets.get(path === '' ? 'index.html' : path);
    if (!asset) {
      send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    send(response, 200, asset.contentType, asset.body);
  };
}

function urlHost(host: string): string {
  // A wildcard address is not one a browser can open: show this machine's.
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Serves the studio over `source` until `close()`. Resolves once listening;
 * rejects with the listen error (`EADDRINUSE`, `EACCES`, …) otherwise.
 */
export async function startStudio(options: StudioServerOptions): Promise<RunningStudio> {
  const assets = await loadStudioAssets();
  const token = options.token ?? newStudioToken();
  const host = options.host ?? DEFAULT_STUDIO_HOST;
  const server = createServer(studioHandler(options.source, assets, token, options.onError));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_STUDIO_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${urlHost(host)}:${port}/${token}/`,
    host,
    port,
    token,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
