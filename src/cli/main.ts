import { Command, Option } from 'commander';
import { readVersion } from '../agent/version.js';
import type { Config, LoadedConfig } from '../config/index.js';
import { readApiEndpoint } from '../config/endpoint.js';
import { formatProblems } from '../config/problems.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { describeError, isLecternError } from '../util/errors.js';
import { processIo, type CliIo } from './io.js';

/**
 * The `lectern` command. Exit codes: 0 ok, 1 usage or a failed lecture, 2 configuration,
 * 3 runtime failure. Exit codes are set through process.exitCode so logs flush before exit.
 */

export const EXIT = { ok: 0, usage: 1, config: 2, runtime: 3 } as const;

type Loader = () => LoadedConfig;
type EndpointLoader = () => Promise<{ host: string; port: number; socketPath?: string | undefined }>;

/**
 * The command groups, each loaded only when it runs (or for help): `lectern status` on a kiosk PC
 * must not pay for SQLite, the XML parser and the S3 client that other commands need.
 */
const COMMAND_GROUPS: Record<string, (program: Command, io: CliIo, load: Loader, endpoint: EndpointLoader) => Promise<void>> = {
  queue: async (program, io, load) => (await import('./commands/queue.js')).registerQueueCommands(program, io, () => load().config),
  config: async (program, io) => (await import('./commands/config.js')).registerConfigCommands(program, io),
  cameras: async (program, io, load) => (await import('./commands/cameras.js')).registerCameraCommands(program, io, () => load().config),
  mics: async (program, io, load) => (await import('./commands/mics.js')).registerMicCommands(program, io, () => load().config),
  platform: async (program, io, load) => (await import('./commands/platform.js')).registerPlatformCommands(program, io, () => load().config),
  doctor: async (program, io, load) => (await import('./commands/doctor.js')).registerDoctorCommand(program, io, load),
  record: async (program, io, _load, endpoint) => (await import('./commands/record.js')).registerRecordCommands(program, io, endpoint),
  uploads: async (program, io, load) => (await import('./commands/uploads.js')).registerUploadsCommands(program, io, () => load().config),
};
// `lectern status` is registered by the record group.
const GROUP_OF_COMMAND: Record<string, string> = { status: 'record' };
const OPTIONS_WITH_VALUES = new Set(['-c', '--config', '--log-level']);

/** The command a command line names (the first word that is not an option), if any. */
export function commandNameOf(argv: readonly string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (OPTIONS_WITH_VALUES.has(arg)) i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

export async function buildProgram(io: CliIo = processIo, argv: readonly string[] = []): Promise<Command> {
  const version = readVersion();
  const program = new Command('lectern')
    .description('Recording agent for smart classrooms: records lectures, packages them as HLS and publishes them to storage.')
    .version(version)
    .option('-c, --config <file>', 'configuration file (default: $LECTERN_CONFIG, then /etc/lectern/config.yaml, then built-in defaults)')
    .addOption(new Option('--log-level <level>', 'override log.level').choices(['debug', 'info', 'warn', 'error']))
    .showHelpAfterError();

  // The named group alone when the command line names one; every group for help and mistakes.
  const named = commandNameOf(argv);
  const group = named === undefined ? undefined : (GROUP_OF_COMMAND[named] ?? named);
  // `lectern status` and `lectern record` only need the daemon's address: the configuration
  // schema (zod) is loaded only when the address cannot be read without it.
  const configModule = group === 'record' ? undefined : await import('../config/index.js');
  const configOpts = (): { path: string | undefined; env: NodeJS.ProcessEnv; cwd: string } => ({ path: program.opts<{ config?: string }>().config, env: process.env, cwd: process.cwd() });
  const load = (): LoadedConfig => {
    if (!configModule) throw new Error('the configuration module was not loaded for this command');
    return configModule.loadConfig(configOpts());
  };
  const endpoint: EndpointLoader = async () => (await readApiEndpoint(configOpts())) ?? (await import('../config/index.js')).loadConfig(configOpts()).config.api;
  const loadOrExit = (): LoadedConfig | undefined => {
    try {
      return load();
    } catch (err) {
      reportConfigError(err, io);
      return undefined;
    }
  };
  const logLevel = (config: Config): LogLevel => program.opts<{ logLevel?: LogLevel }>().logLevel ?? config.log.level;

  program
    .command('demo')
    .description('record from the configured sources (a synthetic camera by default), package and publish one lecture')
    .option('-s, --seconds <n>', 'how long to record', '20')
    .action(async (opts: { seconds: string }) => {
      const seconds = Number(opts.seconds);
      if (!Number.isFinite(seconds) || seconds < 2 || seconds > 3600) {
        io.err(`--seconds must be a number from 2 to 3600, got "${opts.seconds}"`);
        process.exitCode = EXIT.usage;
        return;
      }
      const loaded = loadOrExit();
      if (!loaded) return;
      const { config } = loaded;
      const logger = createLogger({ level: logLevel(config) });
      io.out(`lectern ${version} demo — configuration: ${loaded.source}; data: ${config.agent.dataDir}`);
      const { Agent, installShutdown, runDemo, SHUTDOWN_DEADLINE_MS } = await loadAgent();
      const agent = new Agent({ config, logger, version });
      const shutdown = installShutdown({ logger, stop: () => agent.stop(), deadlineMs: SHUTDOWN_DEADLINE_MS });
      try {
        await agent.start();
        const lectures = await runDemo(agent, { seconds, out: io.out, signal: shutdown.signal });
        for (const lecture of lectures) {
          io.out(lecture.summary);
          if (lecture.location) io.out(`  -> ${lecture.location}`);
        }
        if (lectures.some((l) => l.state !== 'published')) process.exitCode = EXIT.usage;
        io.out('See the jobs with: lectern queue ls');
      } catch (err) {
        io.err(`demo failed: ${describeError(err)}`);
        process.exitCode = EXIT.runtime;
      } finally {
        await shutdown.shutdown('demo finished');
        shutdown.dispose();
      }
    });

  program
    .command('daemon')
    .description('run the agent until SIGTERM/SIGINT (the systemd service runs this)')
    .action(async () => {
      const loaded = loadOrExit();
      if (!loaded) return;
      const logger = createLogger({ level: logLevel(loaded.config), syslogPrefix: process.env.JOURNAL_STREAM !== undefined });
      const { Agent, installShutdown, SHUTDOWN_DEADLINE_MS, Notifier, formatStatusLine } = await loadAgent();
      const agent = new Agent({ config: loaded.config, logger, version, serveApi: true, roomDuties: true });
      const notifier = new Notifier({
        env: process.env,
        logger,
        // The event loop runs this tick at all and the database answers. A lost camera is the
        // recorder's to handle (it restarts it), not a reason for systemd to restart the agent.
        healthy: () => {
          agent.parts.db.prepare('SELECT 1').get();
          return true;
        },
        status: () => formatStatusLine(agent.parts.status.current()),
      });
      const shutdown = installShutdown({
        logger,
        stop: async () => {
          await notifier.stop('Stopping: closing recordings and the database');
          await agent.stop();
        },
        deadlineMs: SHUTDOWN_DEADLINE_MS,
      });
      try {
        await agent.start();
        // READY=1 only once everything is up.
        await notifier.start();
        // The status line follows the recording state at once (not every second: each message is a process spawn).
        let lastState = agent.parts.status.current().recording.state;
        agent.parts.status.subscribe((status) => {
          if (status.recording.state === lastState) return;
          lastState = status.recording.state;
          void notifier.setStatus(formatStatusLine(status));
        });
      } catch (err) {
        logger.error(`agent failed to start: ${describeError(err)}`);
        process.exitCode = EXIT.runtime;
        await shutdown.shutdown('failed start', EXIT.runtime);
      }
      const code = await shutdown.done;
      shutdown.dispose();
      if (code !== 0) process.exitCode = code;
    });

  const groups = group !== undefined && group in COMMAND_GROUPS ? [group] : named === 'demo' || named === 'daemon' ? [] : Object.keys(COMMAND_GROUPS);
  for (const name of groups) await COMMAND_GROUPS[name]?.(program, io, load, endpoint);
  return program;
}

/**
 * The agent and everything it imports (the AWS SDK, SQLite, the packager) load only for the
 * commands that run it: `lectern status` and `lectern record` start in a fraction of the time.
 */
async function loadAgent() {
  const [{ Agent }, { runDemo }, { installShutdown, SHUTDOWN_DEADLINE_MS }, { Notifier, formatStatusLine }] = await Promise.all([
    import('../agent/agent.js'),
    import('../agent/demo.js'),
    import('../agent/shutdown.js'),
    import('../agent/notify.js'),
  ]);
  return { Agent, runDemo, installShutdown, SHUTDOWN_DEADLINE_MS, Notifier, formatStatusLine };
}

function reportConfigError(err: unknown, io: CliIo): void {
  if (isLecternError(err, 'CONFIG_INVALID')) {
    const problems = err.details.problems;
    const source = typeof err.details.source === 'string' ? err.details.source : 'configuration';
    io.err(Array.isArray(problems) ? formatProblems(problems as string[], source) : err.message);
  } else {
    io.err(describeError(err));
  }
  process.exitCode = EXIT.config;
}

export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const program = await buildProgram(processIo, argv);
  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (isLecternError(err) && (err.code === 'CONFIG_INVALID' || err.code === 'CONFIG_UNREADABLE')) {
      reportConfigError(err, processIo);
    } else {
      processIo.err(`lectern: ${describeError(err)}`);
      process.exitCode = EXIT.runtime;
    }
  }
}

await main();
