/**
 * The room's timetable: ICS or YAML, from a local file or an ICS URL cached on disk, expanded with
 * correct time zones, and a Scheduler that turns it into start/stop intents (see scheduler.ts for
 * the policy, ics.ts and yamlTimetable.ts for the formats and the metadata conventions).
 */
export { FileTimetableSource, parseTimetableText, type FileSourceOptions, type TimetableSource } from './fileSource.js';
export { parseIcs, type IcsOptions } from './ics.js';
export { Scheduler, type ScheduleIntent, type SchedulerClock, type SchedulerOptions, type SchedulerStatus, type SchedulerTimers } from './scheduler.js';
export { resolveTzid } from './timeZones.js';
export { Timetable, type LectureMeta, type LectureSlot } from './timetable.js';
export { UrlTimetableSource, type UrlSourceOptions } from './urlSource.js';
export { parseYamlTimetable, type YamlDocument, type YamlParser } from './yamlTimetable.js';
export { isValidTimeZone, systemTimeZone, utcToZonedTime, zonedTimeToUtc, type WallTime } from './zonedTime.js';
