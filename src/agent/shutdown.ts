import type { Logger } from '../log/logger.js';
import { describeError } from '../util/errors.js';

/**
 * The one shutdown path. SIGTERM, SIGINT, an uncaught error and a failed start all end in the
 * same idempotent `shutdown()`, which stops the agent (recordings get the stop ladder, the
 * database is checkpointed) and exits. A hard deadline guarantees exit inside systemd's stop
 * timeout even if a part hangs.
 */
/**
 * How long the daemon and the demo may take to shut down before they exit anyway: longer than the
 * capture stop ladder (8 s quit + 10 s interrupt) with room for an aborted package and the database
 * checkpoint; the systemd unit's TimeoutStopSec is longer still (tests/integration/systemd-unit.test.ts).
 */
export const SHUTDOWN_DEADLINE_MS = 60_000;

export interface ShutdownOptions {
  logger: Logger;
  stop: () => Promise<void>;
  /** Longer than the capture stop ladder (quit + interrupt grace) plus packaging abort. */
  deadlineMs: number;
  exit?: (code: number) => void;
}

export interface ShutdownHandle {
  /** Resolves when a shutdown has finished (whatever started it). */
  readonly done: Promise<number>;
  /** Aborted as soon as a shutdown begins; long waits (the demo's recording) listen to it. */
  readonly signal: AbortSignal;
  shutdown(reason: string, exitCode?: number): Promise<number>;
  dispose(): void;
}

export function installShutdown(opts: ShutdownOptions): ShutdownHandle {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const abort = new AbortController();
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let running: Promise<number> | undefined;

  const shutdown = (reason: string, exitCode = 0): Promise<number> => {
    if (running) return running;
    opts.logger.info(`shutting down: ${reason}`);
    abort.abort(new Error(reason));
    const deadline = setTimeout(() => {
      opts.logger.error(`shutdown did not finish within ${opts.deadlineMs} ms; exiting now`);
      exit(exitCode === 0 ? 1 : exitCode);
    }, opts.deadlineMs);
    deadline.unref();
    running = opts
      .stop()
      .then(
        () => exitCode,
        (err: unknown) => {
          opts.logger.error(`shutdown failed: ${describeError(err)}`);
          return exitCode === 0 ? 1 : exitCode;
        },
      )
      .finally(() => clearTimeout(deadline));
    void running.then(resolveDone);
    return running;
  };

  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const onSignal = (sig: NodeJS.Signals): void => {
    if (running) {
      opts.logger.warn(`${sig} again during shutdown; exiting immediately`);
      exit(130);
      return;
    }
    void shutdown(`received ${sig}`);
  };
  const onFatal = (err: unknown): void => {
    opts.logger.error(`uncaught error: ${describeError(err)}`, { stack: err instanceof Error ? err.stack : undefined });
    void shutdown('uncaught error', 3).then(exit);
  };
  for (const sig of signals) process.on(sig, onSignal);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  return {
    done,
    signal: abort.signal,
    shutdown,
    dispose: () => {
      for (const sig of signals) process.off(sig, onSignal);
      process.off('uncaughtException', onFatal);
      process.off('unhandledRejection', onFatal);
    },
  };
}
