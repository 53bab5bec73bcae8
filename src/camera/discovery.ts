import { randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import os from 'node:os';
import type { Logger } from '../log/logger.js';
import { describeError } from '../util/errors.js';
import { parseProbeMatches } from './parse.js';

/**
 * WS-Discovery for "which cameras are on this network?". A Probe for NetworkVideoTransmitter
 * goes out on every IPv4 interface address from its own socket (a classroom PC often has an
 * uplink and a camera network; one socket bound to nothing would only reach the default route's
 * side), or as a unicast datagram to one address. Replies are matched to our MessageID and merged
 * by endpoint. Recording never depends on discovery: cameras are configured by address.
 */

export const WS_DISCOVERY_PORT = 3702;
export const WS_DISCOVERY_MULTICAST = '239.255.255.250';

export interface DiscoveredCamera {
  /** The device's stable endpoint reference (urn:uuid:...). */
  endpoint: string;
  /** Device service URLs as the camera reported them. */
  xaddrs: string[];
  name?: string;
  hardware?: string;
  scopes: string[];
  /** The address the reply came from. */
  from: string;
}

export interface DiscoveryOptions {
  timeoutMs: number;
  logger: Logger;
  signal?: AbortSignal;
}

export function buildProbe(messageId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ' +
    'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">' +
    '<s:Header>' +
    `<a:MessageID>${messageId}</a:MessageID>` +
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>' +
    '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>' +
    '</s:Header>' +
    '<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>' +
    '</s:Envelope>'
  );
}

/** Every non-internal IPv4 address of this machine. */
export function ipv4InterfaceAddresses(): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) out.push(a.address);
  }
  return out;
}

/** Multicast Probe on every IPv4 interface; resolves after `timeoutMs` with every camera that answered. */
export async function discoverCameras(opts: DiscoveryOptions & { interfaceAddresses?: string[] }): Promise<DiscoveredCamera[]> {
  const addresses = opts.interfaceAddresses ?? ipv4InterfaceAddresses();
  if (addresses.length === 0) {
    opts.logger.warn('no IPv4 network interface is up; nothing to probe');
    return [];
  }
  return probe(
    addresses.map((bindAddress) => ({ bindAddress, target: { host: WS_DISCOVERY_MULTICAST, port: WS_DISCOVERY_PORT }, multicast: true })),
    { ...opts, stopAfterFirst: false },
  );
}

/** Unicast Probe to one address; resolves at the first matching reply, or after `timeoutMs` with none. */
export async function probeAddress(host: string, port: number, opts: DiscoveryOptions): Promise<DiscoveredCamera[]> {
  const loopback = host === 'localhost' || host.startsWith('127.');
  return probe([{ bindAddress: loopback ? '127.0.0.1' : undefined, target: { host, port }, multicast: false }], { ...opts, stopAfterFirst: true });
}

interface ProbeRoute {
  bindAddress: string | undefined;
  target: { host: string; port: number };
  multicast: boolean;
}

async function probe(routes: ProbeRoute[], opts: DiscoveryOptions & { stopAfterFirst: boolean }): Promise<DiscoveredCamera[]> {
  const messageId = `urn:uuid:${randomUUID()}`;
  const message = Buffer.from(buildProbe(messageId), 'utf8');
  const found = new Map<string, DiscoveredCamera>();
  const sockets: Array<{ socket: dgram.Socket; route: ProbeRoute }> = [];
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));

  const onMessage = (data: Buffer, rinfo: dgram.RemoteInfo): void => {
    let parsed;
    try {
      parsed = parseProbeMatches(data.toString('utf8'));
    } catch (err) {
      opts.logger.debug(`ignored a discovery reply from ${rinfo.address}: ${describeError(err)}`);
      return;
    }
    // A reply to someone else's probe (or an old one of ours) is not an answer to this one.
    if (parsed.relatesTo !== undefined && parsed.relatesTo !== messageId) return;
    for (const m of parsed.matches) {
      const known = found.get(m.endpoint);
      if (known) {
        for (const x of m.xaddrs) if (!known.xaddrs.includes(x)) known.xaddrs.push(x);
        continue;
      }
      const camera: DiscoveredCamera = { endpoint: m.endpoint, xaddrs: [...m.xaddrs], scopes: m.scopes, from: rinfo.address };
      if (m.name) camera.name = m.name;
      if (m.hardware) camera.hardware = m.hardware;
      found.set(m.endpoint, camera);
    }
    if (opts.stopAfterFirst && found.size > 0) finish();
  };

  for (const route of routes) {
    const socket = dgram.createSocket({ type: 'udp4' });
    socket.on('message', onMessage);
    socket.on('error', (err) => opts.logger.debug(`discovery socket ${route.bindAddress ?? '*'}: ${err.message}`));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, route.bindAddress, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      if (route.multicast && route.bindAddress) {
        socket.setMulticastInterface(route.bindAddress);
        // Cameras are on the classroom's own segment; the probe need not cross a router.
        socket.setMulticastTTL(1);
      }
      sockets.push({ socket, route });
    } catch (err) {
      opts.logger.debug(`cannot probe from ${route.bindAddress ?? '*'}: ${describeError(err)}`);
      socket.close();
    }
  }

  const send = (): void => {
    for (const { socket, route } of sockets) {
      socket.send(message, route.target.port, route.target.host, (err) => {
        if (err) opts.logger.debug(`probe to ${route.target.host}:${route.target.port} failed: ${err.message}`);
      });
    }
  };
  send();
  // UDP may drop the first datagram; SOAP-over-UDP repeats a probe once after a short delay.
  const repeat = setTimeout(send, Math.min(250, opts.timeoutMs / 4));
  const deadline = setTimeout(finish, opts.timeoutMs);
  const onAbort = (): void => finish();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  await done;
  clearTimeout(repeat);
  clearTimeout(deadline);
  opts.signal?.removeEventListener('abort', onAbort);
  await Promise.all(sockets.map(({ socket }) => new Promise<void>((resolve) => socket.close(() => resolve()))));
  return [...found.values()];
}
