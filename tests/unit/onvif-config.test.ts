import { describe, expect, it } from 'vitest';
import { renderExampleConfig, validateConfig } from '../../src/config/index.js';

const onvif = (extra: Record<string, unknown>) => validateConfig({ sources: [{ kind: 'onvif', name: 'front', address: '192.0.2.11', ...extra }] });

describe('the onvif source kind', () => {
  it('takes host, host:port, [v6]:port or a device service URL, with a 5 s default timeout', () => {
    for (const address of ['192.0.2.11', 'cam-1.room.example.edu:8080', '[2001:db8::1]:80', 'http://192.0.2.11:2020/onvif/device_service', 'https://cam.example.edu/onvif/device_service']) {
      const result = onvif({ address });
      expect(result.ok, address).toBe(true);
      if (result.ok) expect(result.config.sources[0]).toMatchObject({ kind: 'onvif', address, timeoutMs: 5000, role: 'presenter' });
    }
  });

  it('refuses credentials in the address without repeating them, and other mistakes with their paths', () => {
    const withPassword = onvif({ address: 'http://admin:Secret99@192.0.2.11/onvif/device_service' });
    expect(withPassword.ok).toBe(false);
    if (!withPassword.ok) {
      expect(withPassword.problems.join('\n')).toMatch(/sources\.0\.address: must be host\[:port\] or the device service URL/);
      expect(withPassword.problems.join('\n')).not.toContain('Secret99');
    }
    const many = onvif({ address: 'rtsp://192.0.2.11/', passwordFile: '/etc/x', passwordEnv: 'X', timeoutMs: 10, profile: '', colour: 'red' });
    expect(many.ok).toBe(false);
    if (!many.ok) {
      const text = many.problems.join('\n');
      expect(text).toMatch(/sources\.0\.address:/);
      expect(text).toMatch(/sources\.0\.timeoutMs:/);
      expect(text).toMatch(/sources\.0\.profile:/);
      expect(text).toMatch(/sources\.0\.colour: unknown key/);
    }
    expect(onvif({ passwordFile: '/etc/x', passwordEnv: 'X' }).ok).toBe(false);
  });

  it('is documented, commented out, in the example configuration', () => {
    const text = renderExampleConfig();
    expect(text).toMatch(/# - kind: onvif\n( *#.*\n)*? *# {3}address: 192\.0\.2\.11\n/);
    expect(text).toContain('lectern cameras discover');
    // Commented out, so the example is still exactly the defaults (config-example.test.ts checks that).
    expect(text).not.toMatch(/^\s*- kind: onvif/m);
  });
});
