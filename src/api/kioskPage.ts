import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The kiosk page: one self-contained HTML file (its CSS and script inline, no external assets, so
 * it works with the network down). The Content-Security-Policy allows exactly that inline script
 * and style by their sha256 and nothing from elsewhere, so even a title with markup in it could
 * not run code.
 */

export interface KioskPage {
  html: string;
  csp: string;
}

// From src/api/ (tests, tsx) the page is next to this file; from dist/api/ (the built CLI) tsc
// does not copy it, so the source tree's copy is used.
const CANDIDATES = ['./kiosk/index.html', '../../src/api/kiosk/index.html'];

export function loadKioskPage(): KioskPage {
  for (const rel of CANDIDATES) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(file)) return kioskPageFrom(readFileSync(file, 'utf8'));
  }
  return kioskPageFrom('<!doctype html><title>lectern</title><p>The kiosk page is missing from this installation (src/api/kiosk/index.html).</p>');
}

export function kioskPageFrom(html: string): KioskPage {
  const hashes = (tag: string): string[] =>
    [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => `'sha256-${createHash('sha256').update(m[1] ?? '', 'utf8').digest('base64')}'`);
  const csp = [
    "default-src 'none'",
    `script-src ${hashes('script').join(' ') || "'none'"}`,
    `style-src ${hashes('style').join(' ') || "'none'"}`,
    "img-src 'self' blob:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}
