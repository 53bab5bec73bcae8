import type { CaptureSource } from '../capture/sourceRecorder.js';
import type { Config } from '../config/index.js';
import { readSecret } from '../config/index.js';

/**
 * Turns configured sources into capture sources. A camera password is read from its secret file
 * (or env) here, put into the URL ffmpeg needs, and listed as a secret so logs never show it.
 */
export function buildCaptureSources(config: Config, env: NodeJS.ProcessEnv): CaptureSource[] {
  return config.sources.map((source): CaptureSource => {
    switch (source.kind) {
      case 'synthetic':
        return {
          name: source.name,
          role: source.role,
          input: { kind: 'synthetic', width: source.width, height: source.height, fps: source.fps, toneHz: source.toneHz },
          secrets: [],
        };
      case 'rtsp': {
        const hasPassword = source.passwordFile !== undefined || source.passwordEnv !== undefined;
        const password = hasPassword
          ? readSecret({ file: source.passwordFile, env: source.passwordEnv }, { env, what: `the password of source ${source.name}` })
          : undefined;
        const url = new URL(source.url);
        if (source.username !== undefined) url.username = encodeURIComponent(source.username);
        if (password !== undefined) url.password = encodeURIComponent(password);
        return {
          name: source.name,
          role: source.role,
          input: { kind: 'rtsp', url: url.toString(), timeoutMs: config.capture.rtspTimeoutMs },
          secrets: password === undefined ? [] : [password, encodeURIComponent(password)],
        };
      }
    }
  });
}
