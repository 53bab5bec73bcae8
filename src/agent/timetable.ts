import path from 'node:path';
import type { RecordingController } from '../capture/recordingController.js';
import { parseYamlText, type Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { FileTimetableSource, Scheduler, systemTimeZone, UrlTimetableSource, type ScheduleIntent, type TimetableSource } from '../schedule/index.js';

/**
 * The room's timetable as the agent runs it: intents from the Scheduler become RecordingController
 * calls. A slot's stop only ever stops the recording that slot started, so a teacher's manual
 * recording is never ended by the timetable (the Scheduler's policy: a manual recording running
 * when a slot begins is left alone and the slot is skipped).
 */
export function createTimetable(config: Config, controller: RecordingController, logger: Logger): Scheduler | undefined {
  const sched = config.schedule;
  if (sched.source === 'none') return undefined;
  const timeZone = sched.timeZone ?? systemTimeZone();
  const source: TimetableSource = /^https?:\/\//i.test(sched.source)
    ? new UrlTimetableSource({ url: sched.source, cacheDir: sched.cacheDir ?? path.join(config.agent.dataDir, 'schedule'), timeZone, logger })
    : new FileTimetableSource({ path: path.resolve(sched.source), timeZone, parseYaml: parseYamlText });
  const recordingOfSlot = new Map<string, string>();

  const onIntent = async (intent: ScheduleIntent): Promise<void> => {
    switch (intent.kind) {
      case 'start': {
        // A lecture resumed after a restart whose planned end has come as this slot begins
        // (back-to-back slots) is finished here, as its own slot's stop would have done.
        const live = controller.status();
        if (live.recordingId !== undefined && ![...recordingOfSlot.values()].includes(live.recordingId) && isFinishingBy(live.plannedEndMs, intent.slotStartMs)) {
          await controller.stopRecording('planned end reached');
        }
        const { recordingId } = await controller.startRecording({
          title: intent.meta.title,
          course: intent.meta.course,
          teacher: intent.meta.teacher,
          plannedEndMs: intent.plannedEndMs,
          preset: intent.meta.preset,
        });
        recordingOfSlot.set(intent.eventId, recordingId);
        return;
      }
      case 'stop': {
        const id = recordingOfSlot.get(intent.eventId);
        recordingOfSlot.delete(intent.eventId);
        if (id !== undefined && controller.status().recordingId === id) await controller.stopRecording(`timetable: ${intent.reason}`);
        return;
      }
      case 'update': {
        const id = recordingOfSlot.get(intent.eventId);
        if (id !== undefined && controller.status().recordingId === id) await controller.setPlannedEnd(intent.plannedEndMs);
        return;
      }
    }
  };

  return new Scheduler({
    source,
    clock: { now: () => Date.now() },
    logger,
    refreshIntervalMs: sched.refreshIntervalMs,
    isManualRecordingActive: (slot) => {
      const s = controller.status();
      if (s.state === 'idle' || s.recordingId === undefined) return false;
      // A lecture resumed after a restart carries the slot's end: it is this slot's, not manual.
      // One that ends as this slot begins is the previous slot's, finishing: not manual either
      // (chaos seed 101: a kill 8 s before a back-to-back boundary lost the next lecture).
      return ![...recordingOfSlot.values()].includes(s.recordingId) && s.plannedEndMs !== slot.endMs && !isFinishingBy(s.plannedEndMs, slot.startMs);
    },
    onIntent,
  });
}

/** A recording planned to end at or before `atMs` is finishing by then, whoever started it. */
function isFinishingBy(plannedEndMs: number | null | undefined, atMs: number): boolean {
  return plannedEndMs !== undefined && plannedEndMs !== null && plannedEndMs <= atMs;
}
