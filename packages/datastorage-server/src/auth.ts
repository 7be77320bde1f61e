// SPDX-License-Identifier: Apache-2.0
/*
 * Authentication and authorisation of /api/v1/* requests (DESIGN §8), as upstream does it:
 * a bearer token is required on every API request; /readyz stays open.
 *
 * - Token file: accepted tokens, one per line (blank lines and `#` comments ignored), re-read
 *   when the file changes (the contract's TokenFile rules). Every accepted token may use every
 *   route.
 * - Kubernetes: the token is checked with a TokenReview, then each route is authorised with a
 *   SubjectAccessReview on `services/data-storage-service` in the server's namespace, as
 *   upstream: verb `get` for reads, `get` and `create` for writes and verify-chain.
 *
 * Tokens are never logged, and are compared through their SHA-256 digests.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { TokenFile, type TokenFileOptions } from '@kubernaut/datastorage-contract/http';
import type { DataStorageLogger } from './logger.ts';

/** A Kubernetes RBAC verb a route needs. */
export type AuthVerb = 'get' | 'create';

/** Kubernetes mode: TokenReview and SubjectAccessReview against the API server. */
export interface KubernetesAuthOptions {
  /** Base URL of the Kubernetes API, e.g. `https://kubernetes.default.svc`. */
  apiServerUrl: string;
  /** CA certificate(s) of the API server (PEM file) [the system's CAs]. */
  caFile?: string;
  /** The server's own service-account token, sent to the API (re-read when it rotates). */
  tokenFile?: string;
  /** Namespace of the SubjectAccessReview [env POD_NAMESPACE, else `default`]. */
  namespace?: string;
  /** Resource of the SubjectAccessReview [`services`]. */
  resource?: string;
  /** Resource name of the SubjectAccessReview [`data-storage-service`]. */
  resourceName?: string;
  /** How long a TokenReview or SubjectAccessReview answer is reused [10000]. */
  cacheTtlMillis?: number;
  /** Timeout of one call to the API server [5000]. */
  timeoutMillis?: number;
}

/** How API requests are authenticated. */
export type AuthOptions =
  | {
      /** File of accepted bearer tokens, one per line; re-read when it changes. */
      tokenFile: string;
      /** @experimental How often the file is checked for changes [1000]; 0: on every request. */
      reloadCheckMillis?: number;
    }
  | { kubernetes: KubernetesAuthOptions };

/** The outcome of checking a request. */
export type AuthDecision =
  | { ok: true; user: string | undefined }
  | {
      ok: false;
      status: 401 | 403 | 503;
      /** Problem detail (never contains the token). */
      detail: string;
      /** Machine-readable reason for the log. */
      reason: string;
      user?: string;
    };

export interface Authenticator {
  readonly mode: 'token-file' | 'kubernetes';
  /** Checks an Authorization header for a route needing `verbs`. Never rejects. */
  check(authorization: string | undefined, verbs: readonly AuthVerb[]): Promise<AuthDecision>;
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/** The bearer token of an Authorization header, or the 401 to answer. */
function bearerToken(
  authorization: string | undefined,
): { token: string } | Extract<AuthDecision, { ok: false }> {
  if (authorization === undefined || authorization === '') {
    return {
      ok: false,
      status: 401,
      detail: 'Missing Authorization header',
      reason: 'missing_auth_header',
    };
  }
  const m = /^bearer +(.*)$/i.exec(authorization);
  if (!m) {
    return {
      ok: false,
      status: 401,
      detail: 'Invalid Authorization header format',
      reason: 'invalid_auth_format',
    };
  }
  const token = m[1]!.trim();
  if (token === '') {
    return { ok: false, status: 401, detail: 'Empty Bearer token', reason: 'empty_bearer_token' };
  }
  return { token };
}

const INVALID_TOKEN: Extract<AuthDecision, { ok: false }> = {
  ok: false,
  status: 401,
  detail: 'Invalid or expired token',
  reason: 'invalid_token',
};

/** A token file opened at start: a file that cannot be read stops the start. */
function openTokenFile(what: string, path: string, options: TokenFileOptions = {}): TokenFile {
  const file = new TokenFile(path, options);
  try {
    file.load();
  } catch (err) {
    throw new Error(
      `cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`,
    );
  }
  return file;
}

/** Accepts the tokens listed in a file; notices changes of the file. */
export class TokenFileAuthenticator implements Authenticator {
  readonly mode = 'token-file' as const;
  readonly #file: TokenFile;
  readonly #logger: DataStorageLogger;
  /** The file's tokens as last seen, and their digests. */
  #listed: readonly string[];
  #digests: Set<string>;
  #readFailing = false;

  /** Reads the file at once: a missing, unreadable or empty token file fails the start. */
  constructor(path: string, logger: DataStorageLogger, reloadCheckMillis = 1000) {
    this.#logger = logger;
    this.#file = openTokenFile('auth token file', path, {
      checkIntervalMillis: reloadCheckMillis,
      onReadError: (code) => {
        // Keep the tokens last read; say so once per failure streak.
        if (this.#readFailing) return;
        this.#readFailing = true;
        logger.warn('cannot re-read the auth token file; keeping the tokens last read', { code });
      },
    });
    this.#listed = this.#file.tokens();
    this.#digests = new Set(this.#listed.map(digest));
    if (this.#digests.size === 0) throw new Error(`the auth token file ${path} holds no token`);
  }

  /** Number of accepted tokens (for the log line at start). */
  get size(): number {
    return this.#digests.size;
  }

  async check(authorization: string | undefined): Promise<AuthDecision> {
    const b = bearerToken(authorization);
    if (!('token' in b)) return b;
    return this.#accepted().has(digest(b.token)) ? { ok: true, user: undefined } : INVALID_TOKEN;
  }

  /** Digests of the accepted tokens, recomputed when the file was read again. */
  #accepted(): Set<string> {
    const listed = this.#file.tokens();
    if (listed !== this.#listed) {
      this.#listed = listed;
      this.#digests = new Set(listed.map(digest));
      this.#readFailing = false;
      this.#logger.info('auth token file reloaded', { tokens: this.#digests.size });
      if (this.#digests.size === 0) {
        this.#logger.warn('the auth token file holds no token: every API request is refused');
      }
    }
    return this.#digests;
  }
}

class KubernetesApiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubernetesApiError';
  }
}

interface CacheEntry<T> {
  value: T;
  expires: number;
}

/** A bounded map whose entries expire. */
class TtlCache<T> {
  readonly #ttl: number;
  readonly #max: number;
  readonly #map = new Map<string, CacheEntry<T>>();
  constructor(ttl: number, max = 10_000) {
    this.#ttl = ttl;
    this.#max = max;
  }
  get(key: string): T | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: T): void {
    if (this.#ttl <= 0) return;
    if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, { value, expires: Date.now() + this.#ttl });
  }
}

interface ReviewedUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** TokenReview + SubjectAccessReview against a Kubernetes API server. */
export class KubernetesAuthenticator implements Authenticator {
  readonly mode = 'kubernetes' as const;
  readonly namespace: string;
  readonly #api: URL;
  readonly #ca: Buffer | undefined;
  readonly #ownToken: TokenFile | undefined;
  readonly #resource: string;
  readonly #resourceName: string;
  readonly #timeout: number;
  readonly #logger: DataStorageLogger;
  readonly #users: TtlCache<ReviewedUser | null>;
  readonly #access: TtlCache<boolean>;

  constructor(options: KubernetesAuthOptions, logger: DataStorageLogger) {
    this.#api = new URL(options.apiServerUrl);
    if (this.#api.protocol !== 'https:' && this.#api.protocol !== 'http:') {
      throw new Error(`unsupported Kubernetes API URL ${options.apiServerUrl}`);
    }
    this.#ca = options.caFile ? readFileSync(options.caFile) : undefined;
    this.#ownToken = options.tokenFile
      ? openTokenFile('Kubernetes token file', options.tokenFile)
      : undefined;
    this.namespace = options.namespace ?? process.env.POD_NAMESPACE ?? 'default';
    this.#resource = options.resource ?? 'services';
    this.#resourceName = options.resourceName ?? 'data-storage-service';
    this.#timeout = options.timeoutMillis ?? 5000;
    const ttl = options.cacheTtlMillis ?? 10_000;
    this.#users = new TtlCache(ttl);
    this.#access = new TtlCache(ttl);
    this.#logger = logger;
  }

  async check(
    authorization: string | undefined,
    verbs: readonly AuthVerb[],
  ): Promise<AuthDecision> {
    const b = bearerToken(authorization);
    if (!('token' in b)) return b;
    let user: ReviewedUser | null;
    try {
      user = await this.#tokenReview(b.token);
    } catch (err) {
      this.#logger.warn('TokenReview failed', { err });
      return {
        ok: false,
        status: 503,
        detail: 'Authentication service unavailable',
        reason: 'token_review_failed',
      };
    }
    if (user === null) return INVALID_TOKEN;
    for (const verb of verbs) {
      let allowed: boolean;
      try {
        allowed = await this.#subjectAccessReview(user, verb);
      } catch (err) {
        this.#logger.warn('SubjectAccessReview failed', { err, user: user.username });
        return {
          ok: false,
          status: 503,
          detail: 'Authorization service unavailable',
          reason: 'subject_access_review_failed',
          user: user.username,
        };
      }
      if (!allowed) {
        return {
          ok: false,
          status: 403,
          detail: 'Insufficient permissions',
          reason: 'authorization_denied',
          user: user.username,
        };
      }
    }
    return { ok: true, user: user.username };
  }

  async #tokenReview(token: string): Promise<ReviewedUser | null> {
    const key = digest(token);
    const cached = this.#users.get(key);
    if (cached !== undefined) return cached;
    const r = (await this.#post('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token },
    })) as { status?: { authenticated?: boolean; user?: ReviewedUser } };
    const u = r.status?.user;
    const user =
      r.status?.authenticated === true && typeof u?.username === 'string' && u.username !== ''
        ? u
        : null;
    this.#users.set(key, user);
    return user;
  }

  async #subjectAccessReview(user: ReviewedUser, verb: AuthVerb): Promise<boolean> {
    const key = `${verb}\u0000${user.username}\u0000${(user.groups ?? []).join('\u0000')}`;
    const cached = this.#access.get(key);
    if (cached !== undefined) return cached;
    const r = (await this.#post('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: user.username,
        ...(user.uid ? { uid: user.uid } : {}),
        ...(user.groups ? { groups: user.groups } : {}),
        ...(user.extra ? { extra: user.extra } : {}),
        resourceAttributes: {
          namespace: this.namespace,
          verb,
          resource: this.#resource,
          name: this.#resourceName,
        },
      },
    })) as { status?: { allowed?: boolean } };
    const allowed = r.status?.allowed === true;
    this.#access.set(key, allowed);
    return allowed;
  }

  #post(path: string, body: unknown): Promise<unknown> {
    const url = new URL(
      path.replace(/^\//, ''),
      this.#api.href.endsWith('/') ? this.#api : `${this.#api.href}/`,
    );
    const payload = JSON.stringify(body);
    const own = this.#ownToken?.token();
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'content-length': Buffer.byteLength(payload),
      ...(own ? { authorization: `Bearer ${own}` } : {}),
    };
    return new Promise((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        url,
        {
          method: 'POST',
          headers,
          timeout: this.#timeout,
          ...(url.protocol === 'https:' && this.#ca ? { ca: this.#ca } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) {
              // Our own token was refused: read it again at the next call (it may have rotated).
              if (status === 401 || status === 403) this.#ownToken?.invalidate();
              reject(new KubernetesApiError(`${path} answered ${status}`));
              return;
            }
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            } catch {
              reject(new KubernetesApiError(`${path} answered with a body that is not JSON`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new KubernetesApiError(`${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

/** Builds the authenticator of the options. */
export function createAuthenticator(
  options: AuthOptions,
  logger: DataStorageLogger,
): Authenticator {
  if ('tokenFile' in options) {
    return new TokenFileAuthenticator(options.tokenFile, logger, options.reloadCheckMillis);
  }
  return new KubernetesAuthenticator(options.kubernetes, logger);
}
