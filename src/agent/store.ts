import path from 'node:path';
import { readSecret, type Config } from '../config/index.js';
import { UploadsRepo, type Db } from '../db/index.js';
import type { Logger } from '../log/logger.js';
import { FileStore } from '../storage/fileStore.js';
import type { BodyThrottle } from '../storage/s3Multipart.js';
import type { Store } from '../storage/store.js';

/**
 * The configured storage: an S3 bucket (credentials read from their secret files) or a folder.
 * With `db`, multipart uploads keep their progress in it and resume after a restart; without
 * (CLI commands that only read), in memory.
 */
export async function createStore(config: Config, opts: { logger: Logger; env: NodeJS.ProcessEnv; defaultRoot: string; db?: Db; throttle?: BodyThrottle }): Promise<Store> {
  const storage = config.storage;
  if (storage.kind === 'file') return new FileStore({ root: storage.root ?? opts.defaultRoot, logger: opts.logger });
  // Without a file or variable named, the usual AWS variables: what IT staff try first.
  const accessKeyId = readSecret(
    { file: storage.accessKeyIdFile, env: storage.accessKeyIdEnv ?? (storage.accessKeyIdFile === undefined ? 'AWS_ACCESS_KEY_ID' : undefined) },
    { env: opts.env, what: 'storage access key id' },
  );
  const secretAccessKey = readSecret(
    { file: storage.secretAccessKeyFile, env: storage.secretAccessKeyEnv ?? (storage.secretAccessKeyFile === undefined ? 'AWS_SECRET_ACCESS_KEY' : undefined) },
    { env: opts.env, what: 'storage secret access key' },
  );
  // Loaded only for a bucket: the AWS SDK is a fifth of the daemon's memory (measured: 22 MiB of
  // RSS), which a room that publishes to a folder does not need.
  const { S3Store } = await import('../storage/s3Store.js');
  return new S3Store({
    ...(storage.endpoint !== undefined ? { endpoint: storage.endpoint } : {}),
    region: storage.region,
    bucket: storage.bucket,
    forcePathStyle: storage.forcePathStyle,
    credentials: { accessKeyId, secretAccessKey },
    logger: opts.logger,
    ...(opts.db ? { multipartState: new UploadsRepo(opts.db) } : {}),
    // The bandwidth policy (upload/bandwidthPolicy.ts); a FileStore is a local folder and needs none.
    ...(opts.throttle ? { throttle: opts.throttle } : {}),
  });
}

/** Where a published prefix can be found, for people reading the CLI's output. */
export function describeStoreLocation(config: Config, prefix: string): string {
  const storage = config.storage;
  if (storage.kind === 's3') return `s3://${storage.bucket}/${prefix}`;
  return storage.root ? path.join(storage.root, prefix) : prefix;
}
