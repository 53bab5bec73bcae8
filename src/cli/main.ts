import { Command, Option } from 'commander';
import { Agent } from '../agent/agent.js';
import { runDemo } from '../agent/demo.js';
import { installShutdown } from '../agent/shutdown.js';
import { readVersion } from '../agent/version.js';
import { formatProblems, loadConfig, type Config, type LoadedConfig } from '../config/index.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { describeError, isLecternError } from '../util/errors.js';
import { registerCameraCommands } from './commands/cameras.js';
import { registerMicCommands } from './commands/mics.js';
import { registerConfigCommands } from './commands/config.js';
import { registerQueueCommands } from './commands/queue.js';
import { processIo, type CliIo } from './io.js';

/**
 * The `lectern` command. Exit codes: 0 ok, 1 usage or a failed lecture, 2 configuration,
 * 3 runtime failure. Exit codes are set through process.exitCode so logs flush before exit.
 */

export const EXIT = { ok: 0, usage: 1, config: 2, runtime: 3 } as const;

export function buildProgram(io: CliIo = processIo): Command {
  const version = readVersion();
  const program = new Command('lectern')
    .description('Recording agent for smart classrooms: records lectures, packages them as HLS and publishes them to storage.')
    .version(version)
    .option('-c, --config <file>', 'configuration file (default: $LECTERN_CONFIG, then /etc/lectern/config.yaml, then built-in defaults)')
    .addOption(new Option('--log-level <level>', 'override log.level').choices(['debug', 'info', 'warn', 'error']))
    .showHelpAfterError();

  const load = (): LoadedConfig => loadConfig({ path: program.opts<{ config?: string }>().config, env: process.env, cwd: process.cwd() });
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
      const agent = new Agent({ config, logger, version });
      const shutdown = installShutdown({ logger, stop: () => agent.stop(), deadlineMs: 60_000 });
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
      const agent = new Agent({ config: loaded.config, logger, version });
      const shutdown = installShutdown({ logger, stop: () => agent.stop(), deadlineMs: 60_000 });
      try {
        await agent.start();
      } catch (err) {
        logger.error(`agent failed to start: ${describeError(err)}`);
        process.exitCode = EXIT.runtime;
        await shutdown.shutdown('failed start', EXIT.runtime);
      }
      const code = await shutdown.done;
      shutdown.dispose();
      if (code !== 0) process.exitCode = code;
    });

  registerQueueCommands(program, io, () => {
    const loaded = load();
    return loaded.config;
  });
  registerConfigCommands(program, io);
  registerCameraCommands(program, io, () => load().config);
  registerMicCommands(program, io, () => load().config);
  return program;
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
  const program = buildProgram();
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
