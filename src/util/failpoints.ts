/**
 * Failpoints: named places where a crash test asks the program to pause, so that it can kill
 * the process exactly there (during packaging, between two uploaded files). Off unless the
 * environment sets LECTERN_FAILPOINTS, e.g. `transcode.start=3000,publish.file=500` (milliseconds).
 * Nothing else reads or changes behaviour through this.
 */
export type FailpointName = 'transcode.start' | 'publish.file';

export function failpointDelayMs(name: FailpointName, env: NodeJS.ProcessEnv = process.env): number {
  const spec = env.LECTERN_FAILPOINTS;
  if (!spec) return 0;
  for (const part of spec.split(',')) {
    const [key, value] = part.split('=');
    if (key?.trim() === name) {
      const ms = Number(value);
      return Number.isFinite(ms) && ms > 0 ? ms : 0;
    }
  }
  return 0;
}
