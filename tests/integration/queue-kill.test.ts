import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { closeDatabase, integrityCheck, openDatabase, type Db } from '../../src/db/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import { sleep } from '../../src/util/sleep.js';
import type { Ack } from '../fixtures/queue-child.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const KILL_ITERATIONS = 30;
const MIN_KILL_ITERATIONS = 20;
const SOFT_TIME_BUDGET_MS = 25_000;

let buildDir: string;
let childJs: string;
let dir: string;
const children = new Set<ChildProcess>();

/*
 * The child must run the real queue code in a separate process that can be SIGKILLed, but
 * Node 20 cannot run TypeScript and tsx is not installed. Options considered:
 *  - import dist/ from `npm run build`: stale or missing when this file runs on its own, and a
 *    full build can fail on unrelated files that are mid-edit;
 *  - a hand-written .mjs repeating the queue's SQL: would test a copy, not the queue.
 * So we compile exactly the child's import graph (the fixture + the src/ files it imports) from
 * the current sources with the project's own compiler options, into node_modules/.cache: from
 * there `better-sqlite3` resolves by the normal walk up to node_modules, and a package.json with
 * "type": "module" makes node load the output as ESM (package scope stops at node_modules).
 */
beforeAll(() => {
  const cacheDir = path.join(REPO, 'node_modules', '.cache');
  fs.mkdirSync(cacheDir, { recursive: true });
  buildDir = fs.mkdtempSync(path.join(cacheDir, 'lectern-queue-kill-'));
  const tsconfig = path.join(buildDir, 'tsconfig.json');
  fs.writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(REPO, 'tsconfig.json'),
      compilerOptions: { rootDir: REPO, outDir: buildDir, noEmit: false, incremental: false, sourceMap: false, declaration: false },
      files: [path.join(REPO, 'tests', 'fixtures', 'queue-child.ts')],
      include: [],
    }),
  );
  fs.writeFileSync(path.join(buildDir, 'package.json'), '{ "type": "module" }\n');
  const tsc = spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { encoding: 'utf8' });
  childJs = path.join(buildDir, 'tests', 'fixtures', 'queue-child.js');
  // tsc emits despite type errors; only a missing output is fatal here (typecheck is its own step).
  if (!fs.existsSync(childJs)) throw new Error(`could not compile the queue child:\n${tsc.stdout}${tsc.stderr}`);
}, 60_000);

afterAll(() => {
  if (buildDir) fs.rmSync(buildDir, { recursive: true, force: true });
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
});

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface RunningChild {
  proc: ChildProcess;
  acks: Ack[];
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startChild(args: string[]): RunningChild {
  const proc = spawn(process.execPath, [childJs, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(proc);
  const acks: Ack[] = [];
  let pending = '';
  let stderr = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    // The last element is an incomplete line (or ''): a kill can only cut what was not acked.
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const ack = JSON.parse(line) as Ack;
      if (ack.op === 'ready') onReady();
      else acks.push(ack);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.on('close', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal, stderr });
    }),
  );
  return { proc, acks, ready: Promise.race([ready, exited.then(({ stderr: err }) => Promise.reject(new Error(`child exited before it was ready:\n${err}`)))]), exited };
}

/** mulberry32: a tiny seeded PRNG, so a failing kill schedule can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** What the parent knows for certain: only transitions the child acknowledged after commit. */
interface Model {
  enqueued: Map<string, number>; // key → id
  claims: Map<number, number>; // id → acknowledged claims
  done: Set<number>;
  dead: Set<number>;
  maxN: number;
}

function applyAcks(model: Model, acks: readonly Ack[]): void {
  for (const ack of acks) {
    switch (ack.op) {
      case 'enqueue': {
        const known = model.enqueued.get(ack.key);
        if (known !== undefined) {
          expect(ack, 'a re-enqueued key must return the same job').toMatchObject({ id: known, created: false });
        }
        model.enqueued.set(ack.key, ack.id);
        model.maxN = Math.max(model.maxN, Number(ack.key.slice(2)));
        break;
      }
      case 'claim':
        expect(model.done.has(ack.id), `job ${ack.id} claimed after it was done`).toBe(false);
        expect(model.dead.has(ack.id), `job ${ack.id} claimed after it died`).toBe(false);
        model.claims.set(ack.id, (model.claims.get(ack.id) ?? 0) + 1);
        break;
      case 'done':
        expect(model.done.has(ack.id), `job ${ack.id} done twice`).toBe(false);
        model.done.add(ack.id);
        if (ack.followUp) {
          // The follow-up is enqueued in the same transaction as the completion, so it cannot exist before.
          expect(ack.followUp.created).toBe(true);
          model.enqueued.set(ack.followUp.key, ack.followUp.id);
        }
        break;
      case 'fail':
        expect(ack.state).toMatch(/^(queued|dead)$/);
        if (ack.state === 'dead') model.dead.add(ack.id);
        break;
      case 'ready':
      case 'finished':
        break;
    }
  }
}

interface Row {
  id: number;
  kind: string;
  key: string;
  state: string;
  attempts: number;
}

function checkAfterKill(dbFile: string, model: Model, previouslyDone: ReadonlySet<number>, kills: number): Set<number> {
  // openDatabase runs quick_check and would throw DB_CORRUPT; the full check goes further.
  const db: Db = openDatabase(dbFile, { logger: silentLogger });
  try {
    expect(integrityCheck(db)).toEqual([]);
    const rows = new Map(db.prepare<[], Row>('SELECT id, kind, key, state, attempts FROM jobs').all().map((r) => [r.id, r]));

    for (const [key, id] of model.enqueued) expect(rows.get(id), `acknowledged job ${key}`).toMatchObject({ key });
    // Rows the parent never heard of come only from a commit whose ack the kill cut off: at most
    // one per kill, and only of two shapes — the 'a' the next run re-enqueues under the same key,
    // or the 'b' of a hand-off whose 'a' was therefore never acknowledged as done.
    const ackedIds = new Set(model.enqueued.values());
    const unacknowledged = [...rows.values()].filter((r) => !ackedIds.has(r.id));
    expect(unacknowledged.length).toBeLessThanOrEqual(kills);
    for (const row of unacknowledged) {
      if (row.kind === 'a') expect(row.key).toBe(`a-${model.maxN + 1}`);
      else expect(model.done.has(Number(row.key.slice(2))), `unacknowledged ${row.key}`).toBe(false);
    }

    for (const id of model.done) expect(rows.get(id)?.state, `acknowledged done job ${id}`).toBe('done');
    for (const id of model.dead) expect(rows.get(id)?.state, `acknowledged dead job ${id}`).toBe('dead');
    const doneNow = new Set([...rows.values()].filter((r) => r.state === 'done').map((r) => r.id));
    for (const id of previouslyDone) expect(doneNow.has(id), `job ${id} was done and is not any more`).toBe(true);

    // Every acknowledged claim spent an attempt; unacknowledged ones add at most one per kill.
    let unackedClaims = 0;
    for (const row of rows.values()) {
      const acked = model.claims.get(row.id) ?? 0;
      expect(row.attempts, `attempts of job ${row.id}`).toBeGreaterThanOrEqual(acked);
      unackedClaims += row.attempts - acked;
    }
    expect(unackedClaims).toBeLessThanOrEqual(kills);

    // The hand-off is atomic: a done 'a' always has its 'b', and a 'b' never exists without a done 'a'.
    const orphans = db
      .prepare<[], { n: number }>(
        `SELECT
           (SELECT count(*) FROM jobs a WHERE a.kind = 'a' AND a.state = 'done'
              AND NOT EXISTS (SELECT 1 FROM jobs b WHERE b.kind = 'b' AND b.key = 'b-' || a.id))
         + (SELECT count(*) FROM jobs b WHERE b.kind = 'b'
              AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.kind = 'a' AND a.state = 'done' AND b.key = 'b-' || a.id)) AS n`,
      )
      .get();
    expect(orphans?.n, 'a done "a" without its "b", or a "b" without a done "a"').toBe(0);

    // The child works one job at a time: at most one orphaned running job, which a restart reclaims.
    const queue = new JobQueue({ db, logger: silentLogger });
    const running = queue.counts().running;
    expect(running).toBeLessThanOrEqual(1);
    expect(queue.reclaimExpired({ all: true })).toBe(running);
    expect(queue.counts().running).toBe(0);
    return doneNow;
  } finally {
    closeDatabase(db);
  }
}

describe('queue under SIGKILL', () => {
  it('keeps every acknowledged transition and never does a job twice across random kills', async () => {
    const random = seeded(20_251_128);
    const dbFile = path.join(dir, 'state', 'lectern.db');
    closeDatabase(openDatabase(dbFile, { logger: silentLogger }));
    const model: Model = { enqueued: new Map(), claims: new Map(), done: new Set(), dead: new Set(), maxN: 0 };
    let done = new Set<number>();
    let acksSeen = 0;
    const started = Date.now();

    let kills = 0;
    while (kills < KILL_ITERATIONS && (kills < MIN_KILL_ITERATIONS || Date.now() - started < SOFT_TIME_BUDGET_MS)) {
      const child = startChild(['work', dbFile, `child-${kills}`, String(model.maxN + 1)]);
      await child.ready;
      // The random kill moment is the point of this wait: anywhere in the next few dozen commits.
      await sleep(Math.floor(random() * 40));
      child.proc.kill('SIGKILL');
      const exit = await child.exited;
      expect(exit.signal, `the child died on its own:\n${exit.stderr}`).toBe('SIGKILL');
      kills++;
      applyAcks(model, child.acks);
      acksSeen += child.acks.length;
      done = checkAfterKill(dbFile, model, done, kills);
    }

    expect(kills).toBeGreaterThanOrEqual(MIN_KILL_ITERATIONS);
    // The kills must have landed on real work, including hand-offs and dead letters.
    expect(acksSeen).toBeGreaterThan(kills * 5);
    expect(model.done.size).toBeGreaterThan(kills);
    expect(model.dead.size).toBeGreaterThan(0);
  });

  it('gives each job to exactly one of two processes claiming at the same time', async () => {
    const total = 600;
    // On a busy 2-core machine one process can drain the queue before the other gets the CPU;
    // such a round proves nothing about contention, so it is run again (at most 5 rounds).
    let dbFile = '';
    let first: number[] = [];
    let second: number[] = [];
    for (let round = 0; round < 5 && (first.length === 0 || second.length === 0); round++) {
      dbFile = path.join(dir, `race-${round}.db`);
      const db = openDatabase(dbFile, { logger: silentLogger });
      const queue = new JobQueue({ db, logger: silentLogger });
      db.transaction(() => {
        for (let i = 0; i < total; i++) queue.enqueue('race', { i }, { key: String(i) });
      })();
      closeDatabase(db);

      const racers = [startChild(['claim', dbFile, 'p1']), startChild(['claim', dbFile, 'p2'])];
      await Promise.all(racers.map((r) => r.ready));
      for (const racer of racers) racer.proc.stdin!.write('go\n');
      const exits = await Promise.all(racers.map((r) => r.exited));
      for (const exit of exits) expect(exit, exit.stderr).toMatchObject({ code: 0 });
      [first = [], second = []] = racers.map((r) => r.acks.filter((a) => a.op === 'claim').map((a) => a.id));
    }
    expect(first.length).toBeGreaterThan(0);
    expect(second.length).toBeGreaterThan(0);
    const firstSet = new Set(first);
    expect(second.filter((id) => firstSet.has(id))).toEqual([]);
    expect(new Set([...first, ...second]).size).toBe(total);
    expect(first.length + second.length).toBe(total);

    const check = openDatabase(dbFile, { logger: silentLogger });
    try {
      expect(new JobQueue({ db: check, logger: silentLogger }).counts()).toMatchObject({ done: total, queued: 0, running: 0 });
      expect(check.prepare('SELECT max(attempts) AS n FROM jobs').get()).toEqual({ n: 1 });
    } finally {
      closeDatabase(check);
    }
  });
});
