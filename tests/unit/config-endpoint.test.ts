import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readApiEndpoint } from '../../src/config/endpoint.js';
import { loadConfig } from '../../src/config/index.js';
import { makeTmpDir } from '../helpers/tmp.js';

/** The daemon's address as `lectern status` reads it without the schema: it must agree with the full load. */
const tmp = makeTmpDir('lectern-endpoint-');
afterAll(() => tmp.cleanup());

function file(name: string, text: string): string {
  const p = path.join(tmp.dir, name);
  writeFileSync(p, text);
  return p;
}

describe('readApiEndpoint', () => {
  it('agrees with the full configuration load on defaults, a set port and a relative socket', async () => {
    const cases = [file('empty.yaml', ''), file('other.yaml', 'agent:\n  room: r101\n'), file('api.yaml', 'api:\n  host: ::1\n  port: 9001\n  socketPath: run/api.sock\n')];
    for (const p of cases) {
      const fast = await readApiEndpoint({ path: p, env: {}, cwd: tmp.dir });
      const { api } = loadConfig({ path: p, env: {}, cwd: tmp.dir }).config;
      expect(fast, p).toEqual({ host: api.host, port: api.port, ...(api.socketPath !== undefined ? { socketPath: api.socketPath } : {}) });
    }
    expect(await readApiEndpoint({ env: {}, cwd: tmp.dir })).toMatchObject({ host: '127.0.0.1', port: 8750 });
  });

  it('leaves anything unexpected to the full load, which explains it', async () => {
    for (const [name, text] of [
      ['port.yaml', 'api:\n  port: "x"\n'],
      ['list.yaml', '- a\n- b\n'],
      ['broken.yaml', 'api: [\n'],
      ['apilist.yaml', 'api: [1]\n'],
    ] as const) {
      expect(await readApiEndpoint({ path: file(name, text), env: {}, cwd: tmp.dir }), name).toBeUndefined();
    }
    expect(await readApiEndpoint({ path: path.join(tmp.dir, 'missing.yaml'), env: {}, cwd: tmp.dir })).toBeUndefined();
  });
});
