export { openDatabase, closeDatabase, integrityCheck } from './open.js';
export type { Db, OpenDatabaseOptions } from './open.js';
export { MIGRATIONS } from './migrations.js';
