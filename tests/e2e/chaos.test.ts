import { describe, expect, it } from 'vitest';
import { formatChaosReport, runChaos } from './chaos.js';
import { chaosOptions, planChaos } from './chaosPlan.js';

/**
 * The short chaos run for CI: four lectures of 20–30 s (back to back and with pauses) from the
 * RTSP camera behind the ONVIF simulator to a real S3 server behind a shaped link of network
 * namespaces, with camera reboots (one back with its clock 3 h off), kill -9 of the daemon while
 * recording, packaging and publishing, a double press of Record, a manual recording started 6 s
 * before the first slot and running into it, the link to the store cut for 8–15 s and slowed to
 * 1 Mbit/s, the disk filled to just above the free-space threshold, and retention (keep time 0)
 * checked at the end. The seed is
 * fixed so a failure reproduces with `npm run chaos -- --short --lectures 4 --seed 32`; the table
 * is printed either way. Nothing is mocked.
 *
 * Seed 32 puts the kills during packaging and publishing on the last lecture. A kill in the first
 * seconds of a lecture's capture (seed 11 with 8 lectures) once lost that media without a gap in
 * lecture.json; the time before a source's first frame is now a gap, and
 * `npm run chaos -- --short --lectures 8 --seed 11` passed (309 s, too long for CI).
 *
 * The long version (`npm run chaos -- --lectures 8 --seed 101`) lost a whole lecture: a kill 8 s
 * before a back-to-back boundary resumed the earlier lecture without its slot, and the timetable
 * took it for a manual recording and skipped the next slot (fixed in src/agent/timetable.ts).
 * With the second set of faults this run took 214 s here (with a long chaos run beside it).
 */

const SEED = 32;

describe('a short day in a bad classroom', () => {
  it('publishes every lecture exactly once, verified and decodable, with gaps only where the faults were', async () => {
    const plan = planChaos(chaosOptions(SEED, 4, true));
    // The plan itself is reproducible: the same seed gives the same timetable and faults.
    expect(planChaos(chaosOptions(SEED, 4, true))).toEqual(plan);
    // Its own namespaces, apart from `npm run chaos`'s (chaosNetwork.ts).
    // Its RSS growth is printed, not judged: four lectures with three kills compare different
    // processes (26 % once, from a fresh daemon to one that had published); the long version judges it.
    const report = await runChaos({ plan, link: { name: 'lecct', subnet: '10.200.59' }, log: (line) => console.warn(line), judgeRssGrowth: false });
    const table = formatChaosReport(report);
    console.warn(table);
    expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`), table).toEqual([]);
    expect(report.lectures.flatMap((l) => l.problems.map((p) => `${l.label}: ${p}`)), table).toEqual([]);
    expect(report.lectures.filter((l) => l.lectureIds.length === 1)).toHaveLength(plan.lectures.length + 1);
    // The faults really happened: camera outages and a kill inside lectures left their gaps.
    expect(report.events.filter((e) => e.event.kind === 'kill-recording' && e.hit)).toHaveLength(1);
    expect(report.lectures.filter((l) => l.gaps.length > 0).length).toBeGreaterThanOrEqual(2);
    // The second set of faults happened and was checked: each has its row in the table.
    for (const kind of ['camera-wrong-clock', 'network-outage', 'slow-link', 'disk-full', 'manual-overlap'] as const) {
      expect(report.events.filter((e) => e.event.kind === kind && e.hit).map((e) => e.event.kind), table).toEqual([kind]);
    }
    for (const name of ['camera back with the wrong clock', 'disk just above the threshold', 'manual recording into a slot', 'local disk cleaned per retention', 'RSS of every run <= 256 MiB']) {
      expect(report.checks.find((c) => c.name === name)?.ok, `${name}\n${table}`).toBe(true);
    }
    // The slot the manual recording ran into is that recording, not a second lecture.
    expect(report.lectures.find((l) => l.label === 'L1=manual')?.lectureIds, table).toHaveLength(1);
    expect(report.ok).toBe(true);
  }, 420_000);
});
