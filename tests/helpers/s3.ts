import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { RgwPeer } from '../peers/rgw.js';

/**
 * Test-side S3 helpers for the RGW peer: an SDK client for setting up buckets, and Debian's AWS
 * CLI (/usr/bin/aws, not whatever `aws` comes first on PATH) as the independent client that
 * checks what the bucket really holds.
 */

export function adminClient(rgw: RgwPeer): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function createTestBucket(admin: S3Client, tag: string): Promise<string> {
  const name = `${tag}-${randomBytes(4).toString('hex')}`;
  await admin.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** Runs Debian's AWS CLI against the gateway and parses its JSON output ('' -> undefined). */
export function awsCli(rgw: RgwPeer, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      '/usr/bin/aws',
      ['--endpoint-url', rgw.endpoint, '--output', 'json', ...args],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          AWS_ACCESS_KEY_ID: rgw.accessKeyId,
          AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
          AWS_DEFAULT_REGION: rgw.region,
          AWS_CONFIG_FILE: '/dev/null',
          AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_PAGER: '',
        },
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`aws ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout.trim() === '' ? undefined : (JSON.parse(stdout) as unknown));
      },
    );
  });
}

/** Keys with a multipart upload still open in the bucket, as the independent client sees them. */
export async function openMultipartUploads(rgw: RgwPeer, bucket: string): Promise<string[]> {
  const out = (await awsCli(rgw, ['s3api', 'list-multipart-uploads', '--bucket', bucket])) as { Uploads?: Array<{ Key: string }> } | undefined;
  return (out?.Uploads ?? []).map((u) => u.Key);
}

/** Every key in the bucket (one page is plenty for these tests). */
export async function bucketKeys(rgw: RgwPeer, bucket: string): Promise<string[]> {
  const out = (await awsCli(rgw, ['s3api', 'list-objects-v2', '--bucket', bucket])) as { Contents?: Array<{ Key: string }> } | undefined;
  return (out?.Contents ?? []).map((o) => o.Key);
}
