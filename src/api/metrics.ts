import { getHeapSpaceStatistics } from 'node:v8';
import type { AgentStatus } from './types.js';

/**
 * Prometheus text exposition format 0.0.4, written by hand: a dozen gauges do not need a client
 * library. Every family has HELP and TYPE; label values are escaped as the format requires.
 */

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Array<{ labels?: Labels; value: number }>;
}

const RECORDING_STATES = ['idle', 'starting', 'recording', 'paused', 'stopping'] as const;
const ALERT_KINDS = ['source_lost', 'no_audio', 'frozen_picture', 'black_picture', 'disk_low'];

export interface ApiCounters {
  /** Requests answered, by status class ("2xx", "4xx", ...). */
  requests: Map<string, number>;
  sseClients: number;
}

/**
 * The process's memory, split the way it is needed to tell what grows: V8's heap (and each of its
 * spaces: a young generation that grew under allocation pressure looks very different from old
 * space that holds on to objects), memory outside the heap (Buffers), and the rest of the RSS
 * (native: libraries, SQLite, malloc).
 */
export interface ProcessMemory {
  rssBytes: number;
  heapTotalBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  heapSpaces: Array<{ space: string; sizeBytes: number; usedBytes: number; availableBytes: number }>;
}

export function readProcessMemory(): ProcessMemory {
  const m = process.memoryUsage();
  return {
    rssBytes: m.rss,
    heapTotalBytes: m.heapTotal,
    heapUsedBytes: m.heapUsed,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
    // prom-client's label values: "new", "old", "code", "large_object"...
    heapSpaces: getHeapSpaceStatistics().map((h) => ({ space: h.space_name.replace(/_space$/, ''), sizeBytes: h.space_size, usedBytes: h.space_used_size, availableBytes: h.space_available_size })),
  };
}

/** The gauges Prometheus' own Node client exports under the same names, so existing dashboards work. */
function memoryFamilies(m: ProcessMemory): Family[] {
  const perSpace = (key: 'sizeBytes' | 'usedBytes' | 'availableBytes'): Family['samples'] => m.heapSpaces.map((h) => ({ labels: { space: h.space }, value: h[key] }));
  return [
    { name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.', type: 'gauge', samples: [{ value: m.rssBytes }] },
    { name: 'nodejs_heap_size_total_bytes', help: 'Process heap size from Node.js in bytes.', type: 'gauge', samples: [{ value: m.heapTotalBytes }] },
    { name: 'nodejs_heap_size_used_bytes', help: 'Process heap size used from Node.js in bytes.', type: 'gauge', samples: [{ value: m.heapUsedBytes }] },
    { name: 'nodejs_external_memory_bytes', help: 'Node.js external memory size in bytes (Buffers and other memory outside the V8 heap).', type: 'gauge', samples: [{ value: m.externalBytes }] },
    { name: 'nodejs_array_buffers_bytes', help: 'Memory of ArrayBuffers and Buffers in bytes (part of the external memory).', type: 'gauge', samples: [{ value: m.arrayBuffersBytes }] },
    { name: 'nodejs_heap_space_size_total_bytes', help: 'Process heap space size total from Node.js in bytes.', type: 'gauge', samples: perSpace('sizeBytes') },
    { name: 'nodejs_heap_space_size_used_bytes', help: 'Process heap space size used from Node.js in bytes.', type: 'gauge', samples: perSpace('usedBytes') },
    { name: 'nodejs_heap_space_size_available_bytes', help: 'Process heap space size available from Node.js in bytes.', type: 'gauge', samples: perSpace('availableBytes') },
  ];
}

export function renderMetrics(s: AgentStatus, counters: ApiCounters, memory?: ProcessMemory): string {
  const alertCounts = new Map<string, number>(ALERT_KINDS.map((k) => [k, 0]));
  for (const a of s.alerts) alertCounts.set(a.kind, (alertCounts.get(a.kind) ?? 0) + 1);
  const families: Family[] = [
    { name: 'lectern_build_info', help: 'Always 1; the labels name this agent and its version.', type: 'gauge', samples: [{ labels: { version: s.agent.version, agent: s.agent.id, site: s.agent.site, room: s.agent.room }, value: 1 }] },
    { name: 'lectern_start_time_seconds', help: 'When the agent started (Unix time).', type: 'gauge', samples: [{ value: s.agent.startedAtMs / 1000 }] },
    {
      name: 'lectern_recording_state',
      help: 'The recording state: 1 for the current state, 0 for the others.',
      type: 'gauge',
      samples: RECORDING_STATES.map((state) => ({ labels: { state }, value: s.recording.state === state ? 1 : 0 })),
    },
    { name: 'lectern_recording_elapsed_seconds', help: 'How long the live recording has run; 0 when idle.', type: 'gauge', samples: [{ value: s.recording.elapsedMs / 1000 }] },
    { name: 'lectern_recording_segments', help: 'Segments recorded in the live recording (all sources).', type: 'gauge', samples: [{ value: s.recording.segments }] },
    { name: 'lectern_recording_restarts', help: 'Source restarts in the live recording (lost cameras reconnected).', type: 'gauge', samples: [{ value: s.recording.restarts }] },
    {
      name: 'lectern_source_audio_level_dbfs',
      help: 'Last measured audio level of each recording source (RMS, dBFS).',
      type: 'gauge',
      samples: s.recording.sources.filter((src) => src.audioLevelDb !== null).map((src) => ({ labels: { source: src.name }, value: src.audioLevelDb as number })),
    },
    {
      name: 'lectern_source_recording',
      help: '1 while the source records, 0 while it restarts or stops.',
      type: 'gauge',
      samples: s.recording.sources.map((src) => ({ labels: { source: src.name }, value: src.status === 'recording' ? 1 : 0 })),
    },
    {
      name: 'lectern_alerts_active',
      help: 'Alerts that last now, by kind.',
      type: 'gauge',
      samples: [...alertCounts].map(([kind, n]) => ({ labels: { kind }, value: n })),
    },
    {
      name: 'lectern_queue_jobs',
      help: 'Jobs in the durable queue, by state.',
      type: 'gauge',
      samples: Object.entries(s.queue).map(([state, n]) => ({ labels: { state }, value: n })),
    },
    { name: 'lectern_upload_pending_lectures', help: 'Lectures recorded but not yet published.', type: 'gauge', samples: [{ value: s.uploads.pendingLectures }] },
    ...(s.uploads.pendingBytes === null ? [] : [{ name: 'lectern_upload_pending_bytes', help: 'Bytes still to upload.', type: 'gauge' as const, samples: [{ value: s.uploads.pendingBytes }] }]),
    ...(s.disk.freeBytes === null ? [] : [{ name: 'lectern_disk_free_bytes', help: 'Free bytes on the data directory\'s filesystem.', type: 'gauge' as const, samples: [{ value: s.disk.freeBytes }] }]),
    { name: 'lectern_disk_min_free_bytes', help: 'Below this free space no recording starts.', type: 'gauge', samples: [{ value: s.disk.minFreeBytes }] },
    {
      name: 'lectern_api_requests_total',
      help: 'Requests the local API answered, by status class.',
      type: 'counter',
      samples: [...counters.requests].sort().map(([code, n]) => ({ labels: { code }, value: n })),
    },
    { name: 'lectern_api_event_clients', help: 'Open server-sent event streams (kiosks).', type: 'gauge', samples: [{ value: counters.sseClients }] },
    ...(memory ? memoryFamilies(memory) : []),
  ];
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const sample of f.samples) lines.push(`${f.name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels || Object.keys(labels).length === 0) return '';
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')}}`;
}

export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}
