import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorCheck } from '../../src/cli/commands/doctor.js';
import { runCli } from '../helpers/cli.js';
import { adminClient, bucketKeys, createTestBucket } from '../helpers/s3.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startRgw, type RgwPeer } from '../peers/rgw.js';

/**
 * `lectern doctor` against a real S3 server (Ceph RADOS Gateway, tests/peers/rgw.ts): the keys
 * are accepted and the probe object is written, read and removed again (checked with Debian's
 * AWS CLI); a wrong secret and a missing bucket are failures that say which; the server's Date
 * header gives the clock skew, which on one machine is near zero.
 */

const tmp = makeTmpDir('lectern-doctor-s3-');
let rgw: RgwPeer;
let admin: S3Client;
let bucket: string;
const outputs: string[] = [];

interface DoctorJson {
  ok: boolean;
  checks: DoctorCheck[];
}

function secretFile(name: string, value: string): string {
  const file = path.join(tmp.dir, name);
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return file;
}

async function doctorWith(name: string, storage: { bucket: string; secret: string }): Promise<{ code: number | null; json: DoctorJson }> {
  const config = path.join(tmp.dir, `${name}.yaml`);
  writeFileSync(
    config,
    [
      'agent:',
      '  id: room-101-pc',
      `  dataDir: data-${name}`,
      'storage:',
      '  kind: s3',
      `  endpoint: ${rgw.endpoint}`,
      `  bucket: ${storage.bucket}`,
      '  prefix: campus',
      `  accessKeyIdFile: ${secretFile(`${name}.key`, rgw.accessKeyId)}`,
      `  secretAccessKeyFile: ${secretFile(`${name}.secret`, storage.secret)}`,
      '',
    ].join('\n'),
  );
  const res = await runCli(['--config', config, 'doctor', '--json', '--timeout-ms', '15000'], { cwd: tmp.dir, env: { LECTERN_CONFIG: undefined } });
  outputs.push(res.stdout, res.stderr);
  return { code: res.code, json: JSON.parse(res.stdout) as DoctorJson };
}

const check = (json: DoctorJson, name: string): DoctorCheck => {
  const found = json.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check named "${name}"`);
  return found;
};

beforeAll(async () => {
  rgw = await startRgw();
  admin = adminClient(rgw);
  bucket = await createTestBucket(admin, 'doctor');
});

afterAll(async () => {
  admin?.destroy();
  await rgw?.stop();
  tmp.cleanup();
  for (const out of outputs) expect(out).not.toContain(rgw.secretAccessKey);
});

describe('lectern doctor on S3', () => {
  it('accepts working keys, leaves nothing in the bucket, and finds the clocks in step', async () => {
    const { code, json } = await doctorWith('good', { bucket, secret: rgw.secretAccessKey });
    const storage = check(json, 'storage');
    expect(storage.level, storage.message).toBe('ok');
    expect(storage.message).toContain('campus/agents/room-101-pc/doctor-probe.txt');
    const clock = check(json, 'storage clock');
    expect(clock.level).toBe('ok');
    expect(Math.abs(Number(clock.details?.clockSkewMs))).toBeLessThan(2_000);
    // Only the time sync may warn here (no systemd in this container); nothing fails.
    expect(json.checks.filter((c) => c.level === 'fail')).toEqual([]);
    expect(code).toBe(0);
    expect(await bucketKeys(rgw, bucket)).toEqual([]);
  });

  it('names a wrong secret key', async () => {
    const { code, json } = await doctorWith('badsecret', { bucket, secret: 'not-the-secret-0123456789' });
    expect(code).toBe(3);
    const storage = check(json, 'storage');
    expect(storage.level).toBe('fail');
    expect(storage.message).toContain('STORE_ACCESS_DENIED');
    expect(storage.message).toContain('SignatureDoesNotMatch');
    expect(JSON.stringify(json)).not.toContain('not-the-secret-0123456789');
  });

  it('names a missing bucket', async () => {
    const { code, json } = await doctorWith('nobucket', { bucket: 'no-such-bucket-here', secret: rgw.secretAccessKey });
    expect(code).toBe(3);
    expect(check(json, 'storage')).toMatchObject({ level: 'fail', message: expect.stringContaining('STORE_BUCKET_MISSING') as unknown });
  });
});
