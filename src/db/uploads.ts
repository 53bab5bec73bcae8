import type { Db } from './open.js';

/**
 * Durable progress of multipart uploads: the UploadId of each object being uploaded (by key and
 * content sha256) and every part the server confirmed, each committed the moment it is
 * confirmed. After `kill -9` or a power cut the next putFile of the same content finds the
 * upload here and asks the server (ListParts) which parts it really holds; only the others are
 * sent again.
 *
 * Implements storage's MultipartState structurally (db/ may not import storage/); the agent wires
 * it into S3Store.
 */

/** Migration SQL (entry 4 of MIGRATIONS). */
export const UPLOADS_MIGRATION = `
CREATE TABLE multipart_uploads (
  upload_id TEXT PRIMARY KEY,
  object_key TEXT NOT NULL,
  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
  part_size_bytes INTEGER NOT NULL CHECK (part_size_bytes > 0),
  started_at_ms INTEGER NOT NULL
) STRICT;
-- find(): the open upload of this key with this content.
CREATE INDEX multipart_uploads_key ON multipart_uploads (object_key, sha256);
CREATE TABLE multipart_parts (
  upload_id TEXT NOT NULL REFERENCES multipart_uploads(upload_id) ON DELETE CASCADE,
  part_number INTEGER NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
  etag TEXT NOT NULL,
  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
  confirmed_at_ms INTEGER NOT NULL,
  PRIMARY KEY (upload_id, part_number)
) STRICT;
`;

/** Field for field the same as storage's MultipartUpload. */
export interface UploadRecord {
  key: string;
  uploadId: string;
  sizeBytes: number;
  sha256: string;
  partSizeBytes: number;
  startedMs: number;
}

/** Field for field the same as storage's UploadedPart. */
export interface UploadPartRecord {
  partNumber: number;
  etag: string;
  sizeBytes: number;
}

interface UploadRow {
  upload_id: string;
  object_key: string;
  sha256: string;
  size_bytes: number;
  part_size_bytes: number;
  started_at_ms: number;
}

interface PartRow {
  part_number: number;
  etag: string;
  size_bytes: number;
}

export class UploadsRepo {
  readonly #stmt;

  constructor(db: Db, private readonly now: () => number = Date.now) {
    this.#stmt = {
      // Newest first: if an older upload of the same content was left behind, the newest has the most parts.
      find: db.prepare<{ key: string; sha256: string; partSize: number }, UploadRow>(
        `SELECT * FROM multipart_uploads WHERE object_key = @key AND sha256 = @sha256 AND part_size_bytes = @partSize
         ORDER BY started_at_ms DESC, rowid DESC LIMIT 1`,
      ),
      begin: db.prepare<{ id: string; key: string; sha256: string; size: number; partSize: number; started: number }>(
        `INSERT INTO multipart_uploads (upload_id, object_key, sha256, size_bytes, part_size_bytes, started_at_ms)
         VALUES (@id, @key, @sha256, @size, @partSize, @started)`,
      ),
      // A part uploaded again under its number replaces the earlier one on the server; so here.
      partDone: db.prepare<{ id: string; n: number; etag: string; size: number; now: number }>(
        `INSERT INTO multipart_parts (upload_id, part_number, etag, size_bytes, confirmed_at_ms)
         SELECT @id, @n, @etag, @size, @now WHERE EXISTS (SELECT 1 FROM multipart_uploads WHERE upload_id = @id)
         ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = excluded.etag, size_bytes = excluded.size_bytes, confirmed_at_ms = excluded.confirmed_at_ms`,
      ),
      forgetPart: db.prepare<{ id: string; n: number }>(`DELETE FROM multipart_parts WHERE upload_id = @id AND part_number = @n`),
      parts: db.prepare<{ id: string }, PartRow>(`SELECT part_number, etag, size_bytes FROM multipart_parts WHERE upload_id = @id ORDER BY part_number`),
      end: db.prepare<{ id: string }>(`DELETE FROM multipart_uploads WHERE upload_id = @id`),
      all: db.prepare<[], UploadRow>(`SELECT * FROM multipart_uploads ORDER BY started_at_ms, rowid`),
    };
  }

  async find(key: string, sha256: string, partSizeBytes: number): Promise<UploadRecord | undefined> {
    const row = this.#stmt.find.get({ key, sha256, partSize: partSizeBytes });
    return row ? toUpload(row) : undefined;
  }

  async begin(upload: UploadRecord): Promise<void> {
    this.#stmt.begin.run({ id: upload.uploadId, key: upload.key, sha256: upload.sha256, size: upload.sizeBytes, partSize: upload.partSizeBytes, started: upload.startedMs });
  }

  /** Committed (synchronous=FULL) before this returns, so a part acknowledged here survives a power cut. */
  async partDone(uploadId: string, part: UploadPartRecord): Promise<void> {
    this.#stmt.partDone.run({ id: uploadId, n: part.partNumber, etag: part.etag, size: part.sizeBytes, now: this.now() });
  }

  /** A recorded part the server does not hold (it will be sent again). */
  async forgetPart(uploadId: string, partNumber: number): Promise<void> {
    this.#stmt.forgetPart.run({ id: uploadId, n: partNumber });
  }

  async parts(uploadId: string): Promise<UploadPartRecord[]> {
    return this.#stmt.parts.all({ id: uploadId }).map((r) => ({ partNumber: r.part_number, etag: r.etag, sizeBytes: r.size_bytes }));
  }

  /** Forgets the upload and its parts (ON DELETE CASCADE). */
  async end(uploadId: string): Promise<void> {
    this.#stmt.end.run({ id: uploadId });
  }

  /** Every upload still open, oldest first, for status and janitors. */
  list(): UploadRecord[] {
    return this.#stmt.all.all().map(toUpload);
  }
}

function toUpload(row: UploadRow): UploadRecord {
  return {
    key: row.object_key,
    uploadId: row.upload_id,
    sizeBytes: row.size_bytes,
    sha256: row.sha256,
    partSizeBytes: row.part_size_bytes,
    startedMs: row.started_at_ms,
  };
}
