import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { formatProblems, loadConfig, renderExampleConfig, type Config } from '../../config/index.js';
import { describeError, isLecternError } from '../../util/errors.js';

/** Exit codes of these commands (the CLI's table: 0 ok, 1 usage, 2 config, 3 runtime). */
const EXIT_USAGE = 1;
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
      try {
        // 'wx' refuses an existing file atomically, so a config written meanwhile is never clobbered.
        writeFileSync(target, renderExampleConfig(), { mode: 0o644, flag: opts.force ? 'w' : 'wx' });
        // The file holds no secrets; 0644 whatever the umask, so the service user can read it.
        chmodSync(target, 0o644);
      } catch (err) {
        const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
        io.err(exists ? `${target} already exists; use --force to overwrite it` : `cannot write ${target}: ${describeError(err)}`);
        process.exitCode = EXIT_USAGE;
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
        const { config: c, source } = loadConfig({ path: chosen, env: process.env, cwd: process.cwd() });
        io.out(`ok: ${source}`);
        for (const line of summarize(c)) io.out(`  ${line}`);
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

/** What IT staff check first after an edit: who this is, which cameras, where lectures go. */
function summarize(c: Config): string[] {
  const storage = c.storage;
  const where = storage.kind === 'file' ? (storage.root ?? '') : `${storage.endpoint ?? `aws:${storage.region}`} bucket ${storage.bucket}`;
  return [
    `agent ${c.agent.id} at ${c.agent.site}/${c.agent.room}; data in ${c.agent.dataDir}`,
    `sources: ${c.sources.map((s) => `${s.name} (${s.kind}, ${s.role})`).join(', ')}`,
    `storage: ${storage.kind} ${where}${storage.prefix ? ` prefix ${storage.prefix}` : ''}`,
  ];
}
