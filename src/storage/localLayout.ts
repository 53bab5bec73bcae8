import path from 'node:path';
import { LecternError } from '../util/errors.js';
import { assertSafeName } from '../util/names.js';

/**
 * Where things live on the classroom PC, all under one data directory:
 *
 *   state.db                                   the SQLite queue and state
 *   recordings/<recordingId>/<source>/run-0001 one folder per ffmpeg run of a source
 *   packages/.<lectureId>.building             a package being built (renamed when complete)
 *   packages/<lectureId>                        a complete package, waiting for upload
 *   store                                      the default FileStore root
 *
 * Every name is checked, so an id from the API or the database cannot point outside dataDir.
 */
export class LocalLayout {
  /** Absolute, so paths stay valid for processes started with another working directory. */
  readonly dataDir: string;

  constructor(dataDir: string) {
    this.dataDir = path.resolve(dataDir);
  }

  get dbPath(): string {
    return path.join(this.dataDir, 'state.db');
  }

  get storeDefaultRoot(): string {
    return path.join(this.dataDir, 'store');
  }

  recordingDir(recordingId: string): string {
    return path.join(this.dataDir, 'recordings', assertSafeName(recordingId, 'recording id'));
  }

  /** Runs are numbered from 1; the zero padding keeps them in order in a plain `ls`. */
  sourceRunDir(recordingId: string, sourceName: string, runNumber: number): string {
    if (!Number.isSafeInteger(runNumber) || runNumber < 1) {
      throw new LecternError('INVALID_NAME', `run number ${runNumber} must be a positive integer`);
    }
    const run = `run-${String(runNumber).padStart(4, '0')}`;
    return path.join(this.recordingDir(recordingId), assertSafeName(sourceName, 'source name'), run);
  }

  packageDir(lectureId: string): string {
    return path.join(this.dataDir, 'packages', assertSafeName(lectureId, 'lecture id'));
  }

  /** A sibling of packageDir on the same filesystem, so finishing a package is one rename. */
  packageStagingDir(lectureId: string): string {
    return path.join(this.dataDir, 'packages', `.${assertSafeName(lectureId, 'lecture id')}.building`);
  }
}
