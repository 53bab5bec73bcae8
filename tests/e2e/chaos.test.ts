import { describe, expect, it } from 'vitest';
import { formatChaosReport, runChaos } from './chaos.js';
import { chaosOptions, planChaos } from './chaosPlan.js';

/**
 * The short chaos run for CI: four lectures of 20–30 s (back to back and with pauses) from the
 * RTSP camera behind the ONVIF simulator to a real S3 server, with camera reboots, kill -9 of the
 * daemon while recording, packaging and publishing, and a double press of Record. The seed is
 * fixed so a failure reproduces with `npm run chaos -- --short --lectures 4 --seed 32`; the table
 * is printed either way. Nothing is mocked.
 *
 * Seed 32 puts the kills during packaging and publishing on the last lecture. A kill in the first
 * seconds of a lecture's capture (seed 11 with 8 lectures) once lost that media without a gap in
 * lecture.json; the time before a source's first frame is now a gap, and
 * `npm run chaos -- --short --lectures 8 --seed 11` passed (309 s, too long for CI).
 */

const SEED = 32;

describe('a short day in a bad classroom', () => {
  it('publishes every lecture exactly once, verified and decodable, with gaps only where the faults were', async () => {
    const plan = planChaos(chaosOptions(SEED, 4, true));
    // The plan itself is reproducible: the same seed gives the same timetable and faults.
    expect(planChaos(chaosOptions(SEED, 4, true))).toEqual(plan);
    const report = await runChaos({ plan, log: (line) => console.warn(line) });
    const table = formatChaosReport(report);
    console.warn(table);
    expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`), table).toEqual([]);
    expect(report.lectures.flatMap((l) => l.problems.map((p) => `${l.label}: ${p}`)), table).toEqual([]);
    expect(report.lectures.filter((l) => l.lectureIds.length === 1)).toHaveLength(plan.lectures.length + 1);
    // The faults really happened: camera outages and a kill inside lectures left their gaps.
    expect(report.events.filter((e) => e.event.kind === 'kill-recording' && e.hit)).toHaveLength(1);
    expect(report.lectures.filter((l) => l.gaps.length > 0).length).toBeGreaterThanOrEqual(2);
    expect(report.ok).toBe(true);
  }, 420_000);
});
