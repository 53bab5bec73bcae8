import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ApiError } from './http.js';

/**
 * Who may talk to the API.
 *
 * - Host header: a web page the teacher opens can make the browser send requests to
 *   127.0.0.1:8750 under its own domain name (DNS rebinding: evil.example resolves to 127.0.0.1).
 *   The browser then sends `Host: evil.example`, so only the names of this API are accepted:
 *   127.0.0.1, localhost and [::1] with the port, and the configured names (research A6).
 * - Token: a request from anywhere but loopback needs `Authorization: Bearer <token>`, compared in
 *   constant time. Without a configured token, off-loopback requests are refused outright.
 * - Origin: a browser's state-changing request must come from one of the same names.
 */

export interface GuardOptions {
  /** The port the TCP listener is on (0 while unknown). */
  port: () => number;
  /** Extra names (`kiosk.room12.example` or `kiosk.room12.example:8750`) the API answers for. */
  allowedHosts: readonly string[];
  /** The token for off-loopback requests; undefined = off-loopback requests are refused. */
  token: string | undefined;
}

export class RequestGuard {
  readonly #o: GuardOptions;
  readonly #tokenDigest: Buffer | undefined;

  constructor(options: GuardOptions) {
    this.#o = options;
    this.#tokenDigest = options.token === undefined ? undefined : sha256(options.token);
  }

  /** Throws 421/400 unless the Host header names this API. */
  checkHost(host: string | undefined): void {
    if (host === undefined || host === '') throw new ApiError(400, 'API_HOST_REJECTED', 'the request has no Host header');
    if (!this.#hostAllowed(host.toLowerCase())) {
      // The name is not echoed: it is attacker-chosen text.
      throw new ApiError(421, 'API_HOST_REJECTED', 'this API answers only for 127.0.0.1, localhost, [::1] and the names in api.allowedHosts');
    }
  }

  /** Throws 403 when a browser sends a state change from a page of another origin. */
  checkOrigin(origin: string | undefined): void {
    if (origin === undefined) return;
    let host: string;
    try {
      const url = new URL(origin);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
      host = url.host.toLowerCase();
    } catch {
      throw new ApiError(403, 'API_FORBIDDEN', 'requests from this origin are not allowed');
    }
    if (!this.#hostAllowed(host)) throw new ApiError(403, 'API_FORBIDDEN', 'requests from other web sites are not allowed');
  }

  /** Throws 401 unless the peer is on loopback or presents the token. */
  checkAuth(remoteAddress: string | undefined, authorization: string | undefined): void {
    if (isLoopback(remoteAddress)) return;
    if (this.#tokenDigest === undefined) {
      throw new ApiError(401, 'API_UNAUTHORIZED', 'requests from other machines need a token, and no api.tokenFile is configured');
    }
    const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization ?? '');
    if (!match?.[1]) throw new ApiError(401, 'API_UNAUTHORIZED', 'requests from other machines need the header Authorization: Bearer <token>');
    // Both sides hashed to 32 bytes: timingSafeEqual needs equal lengths, and the length of the
    // real token must not leak either.
    if (!timingSafeEqual(sha256(match[1]), this.#tokenDigest)) throw new ApiError(401, 'API_UNAUTHORIZED', 'the API token is wrong');
  }

  #hostAllowed(host: string): boolean {
    const port = this.#o.port();
    const local = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
    if (local.includes(host)) return true;
    for (const allowed of this.#o.allowedHosts) {
      const name = allowed.toLowerCase();
      if (host === name || host === `${name}:${port}`) return true;
    }
    return false;
  }
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback. (Unix socket peers are trusted by the socket's file mode instead.) */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1';
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
