/**
 * A configuration for end-to-end runs that is quick on a 2-core machine: a 320x240 synthetic
 * camera, 2 s segments, a 240p/144p ladder, and no free-disk floor. `extra` adds sections
 * (e.g. storage), as YAML lines.
 */
export function smallDemoConfig(extra: readonly string[] = []): string {
  return [
    'agent:',
    '  dataDir: data',
    'sources:',
    '  - { name: presenter, kind: synthetic, width: 320, height: 240 }',
    'capture:',
    '  segmentSeconds: 2',
    '  minFreeDiskBytes: 0',
    'transcode:',
    '  renditions:',
    '    - { name: 240p, height: 240, videoBitrateKbps: 300 }',
    '    - { name: 144p, height: 144, videoBitrateKbps: 120 }',
    ...extra,
    '',
  ].join('\n');
}
