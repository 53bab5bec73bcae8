import { LecternError } from '../util/errors.js';

/**
 * Camera addresses as IT staff write them, and the URLs cameras report back. Cameras often
 * report their factory address or an address behind NAT in service and stream URLs, so those
 * are pointed back at the host lectern was told to use.
 */

/** `host`, `host:port`, `[v6]:port` or a full device service URL -> the device service URL. */
export function deviceServiceUrl(address: string): URL {
  const trimmed = address.trim();
  const text = /^https?:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}/onvif/device_service`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LecternError('CONFIG_INVALID', `camera address "${address}" is neither host[:port] nor an http:// URL`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new LecternError('CONFIG_INVALID', 'a camera address must not contain a user name or password; give them as username and passwordFile');
  }
  if (url.hostname === '') throw new LecternError('CONFIG_INVALID', `camera address "${address}" has no host`);
  return url;
}

/**
 * A service URL the camera reported, pointed at the device we talk to: when its host differs
 * from ours, host and port are replaced (the camera reported an address we cannot reach, as
 * behind NAT); path and query are kept.
 */
export function alignServiceUrl(reported: string, device: URL): string {
  const url = new URL(reported);
  if (url.hostname === device.hostname) return url.toString();
  url.protocol = device.protocol;
  url.hostname = device.hostname;
  url.port = device.port;
  return url.toString();
}

/**
 * A media URL (RTSP stream, snapshot) the camera reported, without credentials, pointed at the
 * configured host. When it names the very host:port the camera reported for its services (a
 * snapshot on the ONVIF web server), it gets the configured host:port like the services; when
 * only the host differs, only the host is replaced (554 stays the RTSP port).
 */
export function alignMediaUrl(reported: string, device: URL, reportedServiceHost?: string): string {
  const url = new URL(reported);
  url.username = '';
  url.password = '';
  if (url.hostname === device.hostname) return url.toString();
  if (reportedServiceHost !== undefined && url.host === reportedServiceHost && (url.protocol === 'http:' || url.protocol === 'https:')) {
    url.hostname = device.hostname;
    url.port = device.port;
    return url.toString();
  }
  url.hostname = device.hostname;
  return url.toString();
}

/** `uri` with the user name and password added (URL-encoded) for ffmpeg. Never log the result. */
export function withCredentials(uri: string, username: string | undefined, password: string | undefined): string {
  if (username === undefined || username === '') return uri;
  const url = new URL(uri);
  url.username = encodeURIComponent(username);
  if (password !== undefined) url.password = encodeURIComponent(password);
  return url.toString();
}
