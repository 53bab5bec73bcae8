import { createHash, randomBytes } from 'node:crypto';
import { LecternError } from '../util/errors.js';

/**
 * HTTP authentication for cameras (snapshots, and SOAP on cameras that ask for it): Digest per
 * RFC 7616 (MD5, SHA-256 and their -sess forms; qop=auth, or auth-int for bodies), and Basic
 * only when the camera offers nothing else. Credentials are sent only in answer to a challenge,
 * never on the first request.
 *
 * The WWW-Authenticate parser follows RFC 7235: several challenges may share one header, values
 * may be quoted strings with commas and backslash escapes, and unquoted base64 values keep their
 * `=` padding (node-onvif split on `=` and truncated such nonces, which looped on 401).
 */

export interface AuthChallenge {
  /** Lower case: "digest", "basic". */
  scheme: string;
  /** Parameter names in lower case; values unquoted. */
  params: Record<string, string>;
  token68?: string;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
const PARAM = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[!#$%&'*+.^_`|~0-9A-Za-z/-]+=*)/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))/;

export function parseWwwAuthenticate(values: readonly string[]): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  for (const value of values) {
    let rest = value;
    let current: AuthChallenge | undefined;
    const skip = (): void => {
      rest = rest.replace(/^[ \t,]+/, '');
    };
    skip();
    while (rest.length > 0) {
      if (current) {
        const param = PARAM.exec(rest);
        if (param) {
          const name = (param[1] as string).toLowerCase();
          const raw = param[2] as string;
          current.params[name] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
          rest = rest.slice(param[0].length);
          skip();
          continue;
        }
        if (Object.keys(current.params).length === 0 && current.token68 === undefined) {
          const t68 = TOKEN68.exec(rest);
          if (t68) {
            current.token68 = t68[0];
            rest = rest.slice(t68[0].length);
            skip();
            continue;
          }
        }
      }
      const scheme = TOKEN.exec(rest);
      if (!scheme) break; // not a header we can read; keep what was parsed
      current = { scheme: scheme[0].toLowerCase(), params: Object.create(null) as Record<string, string> };
      challenges.push(current);
      rest = rest.slice(scheme[0].length);
      skip();
    }
  }
  return challenges;
}

const ALGORITHMS: Record<string, { hash: 'md5' | 'sha256'; sess: boolean; rank: number }> = {
  'md5': { hash: 'md5', sess: false, rank: 1 },
  'md5-sess': { hash: 'md5', sess: true, rank: 1 },
  'sha-256': { hash: 'sha256', sess: false, rank: 2 },
  'sha-256-sess': { hash: 'sha256', sess: true, rank: 2 },
};

/** The challenge to answer: the strongest Digest we support, else Basic, else none. */
export function pickChallenge(challenges: readonly AuthChallenge[]): AuthChallenge | undefined {
  const digests = challenges
    .filter((c) => c.scheme === 'digest' && ALGORITHMS[(c.params.algorithm ?? 'MD5').toLowerCase()] !== undefined)
    .sort((a, b) => (ALGORITHMS[(b.params.algorithm ?? 'MD5').toLowerCase()]?.rank ?? 0) - (ALGORITHMS[(a.params.algorithm ?? 'MD5').toLowerCase()]?.rank ?? 0));
  return digests[0] ?? challenges.find((c) => c.scheme === 'basic');
}

export interface AuthorizationInput {
  username: string;
  password: string;
  method: string;
  /** The request target as sent on the request line (path and query). */
  uri: string;
  body?: Buffer;
  /** Request count for this nonce, from 1. */
  nc?: number;
  /** For tests with known vectors; otherwise random. */
  cnonce?: string;
}

/** The Authorization header value answering `challenge`. */
export function authorizationHeader(challenge: AuthChallenge, input: AuthorizationInput): string {
  if (challenge.scheme === 'basic') {
    return `Basic ${Buffer.from(`${input.username}:${input.password}`, 'utf8').toString('base64')}`;
  }
  if (challenge.scheme !== 'digest') throw new LecternError('CAMERA_UNSUPPORTED', `the camera asks for ${challenge.scheme} authentication, which lectern does not support`);
  const p = challenge.params;
  const algorithmName = p.algorithm ?? 'MD5';
  const algorithm = ALGORITHMS[algorithmName.toLowerCase()];
  if (!algorithm) throw new LecternError('CAMERA_UNSUPPORTED', `the camera asks for digest algorithm ${algorithmName}, which lectern does not support`);
  const realm = p.realm ?? '';
  const nonce = p.nonce ?? '';
  const h = (text: string | Buffer): string => createHash(algorithm.hash).update(text).digest('hex');

  const qops = (p.qop ?? '').split(',').map((q) => q.trim().toLowerCase()).filter((q) => q !== '');
  const qop = qops.includes('auth') ? 'auth' : qops.includes('auth-int') ? 'auth-int' : undefined;
  const cnonce = input.cnonce ?? randomBytes(12).toString('hex');
  const nc = (input.nc ?? 1).toString(16).padStart(8, '0');

  let ha1 = h(`${input.username}:${realm}:${input.password}`);
  if (algorithm.sess) ha1 = h(`${ha1}:${nonce}:${cnonce}`);
  const ha2 = qop === 'auth-int' ? h(`${input.method}:${input.uri}:${h(input.body ?? Buffer.alloc(0))}`) : h(`${input.method}:${input.uri}`);
  const response = qop ? h(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : h(`${ha1}:${nonce}:${ha2}`);

  const parts = [
    `username=${quote(input.username)}`,
    `realm=${quote(realm)}`,
    `nonce=${quote(nonce)}`,
    `uri=${quote(input.uri)}`,
    `algorithm=${algorithmName}`,
    `response=${quote(response)}`,
  ];
  if (p.opaque !== undefined) parts.push(`opaque=${quote(p.opaque)}`);
  if (qop) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce=${quote(cnonce)}`);
  return `Digest ${parts.join(', ')}`;
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
