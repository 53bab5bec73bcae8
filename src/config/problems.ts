/** The CLI's rendering of configuration problems: a count line, then one indented problem per line. */
export function formatProblems(problems: readonly string[], source: string): string {
  return [`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, ...problems.map((p) => `  ${p}`)].join('\n');
}
