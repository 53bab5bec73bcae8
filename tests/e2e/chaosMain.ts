import { parseArgs } from 'node:util';
import { formatChaosReport, runChaos } from './chaos.js';
import { chaosOptions, planChaos } from './chaosPlan.js';

/**
 * `npm run chaos -- --seed N --lectures 8`: the chaos run from the command line, with its table
 * on stdout and exit code 1 when anything was lost. The defaults are the long version's shape
 * (1–2 minute lectures); `--short` is the CI test's.
 */

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    lectures: { type: 'string', default: '8' },
    short: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const lectures = Number(values.lectures);
if (!Number.isInteger(seed) || seed < 0 || !Number.isInteger(lectures) || lectures < 1) {
  console.error('usage: chaosMain [--seed N] [--lectures N] [--short] [--keep]  (N: a whole number >= 0 / >= 1)');
  process.exit(1);
}

const plan = planChaos(chaosOptions(seed, lectures, values.short));
// The long version's day ends with a backlog (uploads pause while recording, the link was cut and
// slowed): give publishing up to 10 minutes after the last lecture.
const report = await runChaos({ plan, keepWorkDir: values.keep, ...(values.short ? {} : { drainTimeoutMs: 600_000 }), log: (line) => console.error(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`) });
console.log(formatChaosReport(report));
process.exitCode = report.ok ? 0 : 1;
