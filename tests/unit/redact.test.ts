import { describe, it, expect } from 'vitest';
import { REDACTED, redactArgv, redactSecrets, redactUrl } from '../../src/util/redact.js';

describe('redactUrl', () => {
  it('masks the password of an RTSP URL and keeps the user and host', () => {
    const out = redactUrl('rtsp://admin:s3cret@10.0.0.5/stream');
    expect(out).toBe(`rtsp://admin:${REDACTED}@10.0.0.5/stream`);
    expect(out).not.toContain('s3cret');
  });

  it('masks every URL in a line, whatever the scheme', () => {
    const out = redactUrl('from rtsp://a:pw1@cam1/s to http://b:pw2@cam2:8080/x and rtsps://c:pw3@cam3/');
    expect(out).toBe('from rtsp://a:***@cam1/s to http://b:***@cam2:8080/x and rtsps://c:***@cam3/');
  });

  it('masks a password that contains characters other than letters', () => {
    const out = redactUrl('rtsp://admin:p%40ss:w0rd!@cam/stream');
    expect(out).not.toMatch(/w0rd|p%40ss/);
    expect(out).toContain('@cam/stream');
  });

  it('masks secret query parameters and keeps the others', () => {
    const out = redactUrl('http://cam/snapshot.jpg?user=admin&password=hunter2&channel=1');
    expect(out).toBe('http://cam/snapshot.jpg?user=admin&password=***&channel=1');
    const signed = redactUrl('https://s3.example/b/k?X-Amz-Signature=abcdef123&token=tok456');
    expect(signed).not.toMatch(/abcdef123|tok456/);
    expect(signed).toContain('X-Amz-Signature=***');
  });

  it('leaves URLs without credentials alone', () => {
    const text = 'rtsp://10.0.0.5:554/stream1 and a@b.c mail';
    expect(redactUrl(text)).toBe(text);
  });
});

describe('redactArgv', () => {
  it('redacts URL credentials in each argument and leaves the rest unchanged', () => {
    const argv = ['ffmpeg', '-rtsp_transport', 'tcp', '-i', 'rtsp://admin:s3cret@10.0.0.5/stream', '-c', 'copy', 'out.ts'];
    const out = redactArgv(argv);
    expect(out).toEqual(['ffmpeg', '-rtsp_transport', 'tcp', '-i', 'rtsp://admin:***@10.0.0.5/stream', '-c', 'copy', 'out.ts']);
    expect(argv[4]).toBe('rtsp://admin:s3cret@10.0.0.5/stream');
  });

  it('masks given secret values wherever they appear', () => {
    const out = redactArgv(['-headers', 'Authorization: Bearer tok-XYZ-123', 'x=tok-XYZ-123y'], ['tok-XYZ-123']);
    expect(out).toEqual(['-headers', 'Authorization: Bearer ***', 'x=***y']);
  });

  it('does not mask secrets shorter than 4 characters (they would mangle unrelated text)', () => {
    expect(redactSecrets('a-abc-b', ['abc'])).toBe('a-abc-b');
    expect(redactSecrets('a-abcd-b', ['abcd'])).toBe('a-***-b');
  });
});
