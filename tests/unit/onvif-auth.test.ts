import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { authorizationHeader, parseWwwAuthenticate, pickChallenge } from '../../src/camera/digestAuth.js';
import { formatCreated, passwordDigest, securityHeader } from '../../src/camera/wsse.js';
import { child, parseXml } from '../../src/camera/xml.js';

describe('WS-Security UsernameToken', () => {
  it('matches the ONVIF Application Programmer\'s Guide vector', () => {
    // ONVIF Application Programmer's Guide, 6.1.1.3: user "user", password "userpassword".
    const nonce = Buffer.from('LKqI6G/AikKCQrN0zqZFlg==', 'base64');
    expect(passwordDigest(nonce, '2010-09-16T07:50:45Z', 'userpassword')).toBe('tuOSpGlFlIXsozq4HFNeeGeFLEI=');
  });

  it('signs with the camera clock: Created is our time plus the offset, without fractions', () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0, 700);
    const twoHoursMs = 2 * 3600_000;
    const header = securityHeader({ username: 'admin', password: 'secret-pw', clockOffsetMs: -twoHoursMs, now: () => now, nonce: Buffer.from('0123456789abcdef') }, 's');
    const token = child(parseXml(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">${header}</s:Envelope>`, 't'), 'Security');
    const ut = child(token, 'UsernameToken');
    const created = child(ut, 'Created')?.text;
    expect(created).toBe('2026-11-28T10:00:00Z');
    expect(child(ut, 'Password')?.text).toBe(passwordDigest(Buffer.from('0123456789abcdef'), created as string, 'secret-pw'));
    expect(child(ut, 'Nonce')?.text).toBe(Buffer.from('0123456789abcdef').toString('base64'));
    expect(header).not.toContain('secret-pw');
    expect(formatCreated(Date.UTC(2000, 0, 1, 0, 0, 0, 999))).toBe('2000-01-01T00:00:00Z');
  });

  it('uses a fresh nonce for every token (cameras refuse replays)', () => {
    const a = securityHeader({ username: 'u', password: 'p', clockOffsetMs: 0 }, 's');
    const b = securityHeader({ username: 'u', password: 'p', clockOffsetMs: 0 }, 's');
    const nonce = (h: string): string | undefined => /<Nonce[^>]*>([^<]+)</.exec(h)?.[1];
    expect(nonce(a)).not.toBe(nonce(b));
  });
});

describe('WWW-Authenticate parsing', () => {
  it('keeps = padding in nonces and commas inside quoted strings', () => {
    const [c] = parseWwwAuthenticate(['Digest realm="IP Camera, Room 2", qop="auth,auth-int", nonce="YWJjZGVmZw==", opaque="b2Q=", algorithm=MD5, stale=FALSE']);
    expect(c?.scheme).toBe('digest');
    expect(c?.params).toMatchObject({ realm: 'IP Camera, Room 2', qop: 'auth,auth-int', nonce: 'YWJjZGVmZw==', opaque: 'b2Q=', algorithm: 'MD5', stale: 'FALSE' });
  });

  it('reads several challenges in one header or in several headers, escapes and unquoted base64', () => {
    const list = parseWwwAuthenticate(['Basic realm="cam", Digest realm="a \\"b\\"", nonce=abc123==, qop=auth', 'Negotiate dG9rZW4=']);
    expect(list.map((c) => c.scheme)).toEqual(['basic', 'digest', 'negotiate']);
    expect(list[1]?.params).toMatchObject({ realm: 'a "b"', nonce: 'abc123==', qop: 'auth' });
    expect(list[2]?.token68).toBe('dG9rZW4=');
  });

  it('prefers SHA-256 digest over MD5, and digest over basic', () => {
    const list = parseWwwAuthenticate(['Basic realm="x"', 'Digest realm="x", nonce="n", algorithm=MD5', 'Digest realm="x", nonce="n", algorithm=SHA-256']);
    expect(pickChallenge(list)?.params.algorithm).toBe('SHA-256');
    expect(pickChallenge(parseWwwAuthenticate(['Basic realm="x"']))?.scheme).toBe('basic');
    expect(pickChallenge(parseWwwAuthenticate(['Digest realm="x", nonce="n", algorithm=SHA-512-256']))).toBeUndefined();
  });
});

describe('HTTP Digest response', () => {
  it('matches the RFC 2617 section 3.5 example', () => {
    const [challenge] = parseWwwAuthenticate(['Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"']);
    const header = authorizationHeader(challenge as NonNullable<typeof challenge>, {
      username: 'Mufasa',
      password: 'Circle Of Life',
      method: 'GET',
      uri: '/dir/index.html',
      nc: 1,
      cnonce: '0a4f113b',
    });
    expect(header).toContain('response="6629fae49393a05397450978507c4ef1"');
    expect(header).toContain('qop=auth, nc=00000001, cnonce="0a4f113b"');
    expect(header).toContain('opaque="5ccc069c403ebaf9f0171e9517f40e41"');
    expect(header).not.toContain('Circle Of Life');
  });

  it('computes SHA-256 and legacy (no qop) responses', () => {
    const sha = authorizationHeader({ scheme: 'digest', params: { realm: 'r', nonce: 'n', algorithm: 'SHA-256', qop: 'auth' } }, { username: 'u', password: 'p', method: 'GET', uri: '/x', cnonce: 'c' });
    const h = (s: string): string => createHash('sha256').update(s).digest('hex');
    expect(sha).toContain(`response="${h(`${h('u:r:p')}:n:00000001:c:auth:${h('GET:/x')}`)}"`);
    const legacy = authorizationHeader({ scheme: 'digest', params: { realm: 'r', nonce: 'n' } }, { username: 'u', password: 'p', method: 'GET', uri: '/x' });
    const m = (s: string): string => createHash('md5').update(s).digest('hex');
    expect(legacy).toContain(`response="${m(`${m('u:r:p')}:n:${m('GET:/x')}`)}"`);
    expect(legacy).not.toContain('qop=');
  });
});
