export { openDatabase, closeDatabase, integrityCheck } from './open.js';
export type { Db, OpenDatabaseOptions } from './open.js';
export { MIGRATIONS } from './migrations.js';
export { UploadsRepo, UPLOADS_MIGRATION, type UploadPartRecord, type UploadRecord } from './uploads.js';
