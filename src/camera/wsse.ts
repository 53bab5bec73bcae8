import { createHash, randomBytes } from 'node:crypto';
import { xmlEscape } from './xml.js';

/**
 * WS-Security UsernameToken with PasswordDigest, the authentication every ONVIF camera accepts:
 * Digest = Base64(SHA1(nonce + Created + password)). `Created` is written in the camera's time
 * (our clock plus the measured offset): cameras reject tokens more than a few seconds or minutes
 * off their own clock, and a camera that lost power often believes it is 1970 or 2000.
 */

export const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
export const WSU_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const PASSWORD_DIGEST = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const BASE64_BINARY = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

export function passwordDigest(nonce: Buffer, created: string, password: string): string {
  return createHash('sha1')
    .update(Buffer.concat([nonce, Buffer.from(created, 'utf8'), Buffer.from(password, 'utf8')]))
    .digest('base64');
}

/** xsd:dateTime in UTC without fractions, which every firmware parses. */
export function formatCreated(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export interface UsernameTokenInput {
  username: string;
  password: string;
  /** The camera's clock minus ours, in ms. */
  clockOffsetMs: number;
  now?: () => number;
  /** For tests with known vectors; otherwise 16 random bytes. */
  nonce?: Buffer;
}

/** The `<Security>` header element (SOAP 1.2 `mustUnderstand`, as ONVIF Device Manager sends it). */
export function securityHeader(input: UsernameTokenInput, soapPrefix: string): string {
  const nonce = input.nonce ?? randomBytes(16);
  const created = formatCreated((input.now ?? Date.now)() + input.clockOffsetMs);
  const digest = passwordDigest(nonce, created, input.password);
  return (
    `<Security ${soapPrefix}:mustUnderstand="1" xmlns="${WSSE_NS}">` +
    `<UsernameToken>` +
    `<Username>${xmlEscape(input.username)}</Username>` +
    `<Password Type="${PASSWORD_DIGEST}">${digest}</Password>` +
    `<Nonce EncodingType="${BASE64_BINARY}">${nonce.toString('base64')}</Nonce>` +
    `<Created xmlns="${WSU_NS}">${created}</Created>` +
    `</UsernameToken>` +
    `</Security>`
  );
}
