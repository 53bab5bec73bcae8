import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { formatProblems, loadConfig, renderExampleConfig } from '../../config/index.js';
import { describeError, isLecternError } from '../../util/errors.js';

/** Exit code for configuration problems (the CLI's table: 0 ok, 1 usage, 2 config, 3 runtime). */
const EXIT_CONFIG = 2;

/** `lectern config init` and `lectern config check`. */
export function registerConfigCommands(program: Command, io: { out: (s: string) => void; err: (s: string) => void }): void {
  const config = program.command('config').description('write or check the configuration file');

  config
    .command('init')
    .description('write a commented example configuration (every setting with its default)')
    .argument('[file]', 'where to write it', 'lectern.yaml')
    .option('--force', 'overwrite an existing file')
    .action((file: string, opts: { force?: boolean }) => {
      const target = path.resolve(file);
      if (existsSync(target) && !opts.force) {
        io.err(`${target} already exists; use --force to overwrite it`);
        process.exitCode = 1;
        return;
      }
      try {
        writeFileSync(target, renderExampleConfig(), { mode: 0o644 });
      } catch (err) {
        io.err(`cannot write ${target}: ${describeError(err)}`);
        process.exitCode = 1;
        return;
      }
      io.out(`wrote ${target}; edit it, then run: lectern config check ${file}`);
    });

  config
    .command('check')
    .description('validate a configuration file and list every problem')
    .argument('[file]', 'the file (default: --config, $LECTERN_CONFIG, then /etc/lectern/config.yaml)')
    .action((file: string | undefined) => {
      const chosen = file ?? program.opts<{ config?: string }>().config;
      try {
        const { config: c, source } = loadConfig({ ...(chosen !== undefined ? { path: chosen } : {}), env: process.env, cwd: process.cwd() });
        io.out(`ok: ${source}`);
        io.out(`  agent ${c.agent.id} at ${c.agent.site}/${c.agent.room}; data in ${c.agent.dataDir}`);
        io.out(`  sources: ${c.sources.map((s) => `${s.name} (${s.kind}, ${s.role})`).join(', ')}`);
        const where = c.storage.kind === 'file' ? (c.storage.root ?? '') : `${c.storage.endpoint ?? `aws:${c.storage.region}`} bucket ${c.storage.bucket}`;
        io.out(`  storage: ${c.storage.kind} ${where}${c.storage.prefix ? ` prefix ${c.storage.prefix}` : ''}`);
      } catch (err) {
        if (isLecternError(err, 'CONFIG_INVALID') && Array.isArray(err.details.problems)) {
          io.err(formatProblems(err.details.problems as string[], String(err.details.source)));
        } else {
          io.err(describeError(err));
        }
        process.exitCode = EXIT_CONFIG;
      }
    });
}
