import { execFile } from 'node:child_process';
import path from 'node:path';
import { startCountingRelay, type CountingRelay } from '../peers/countingRelay.js';
import type { RgwPeer } from '../peers/rgw.js';
import { createShapedLink, NS_RELAY_SOURCE, type ShapedLink } from '../peers/shapedLink.js';

/**
 * The chaos run's link between the classroom PC and the storage: the RGW on 127.0.0.1 is
 * reached only through a shaped link of the test's own network namespaces (tests/peers/shapedLink.ts,
 * as ../shared/TESTING.md says: safety route first, cuts only from inside the namespace). A relay
 * in the server namespace forwards to a unix socket on the host, where a counting relay forwards
 * to the gateway, so every byte the daemon sends to the store crosses the shaped link.
 *
 * Its own names and subnets (not the bandwidth tests' `lecbw`, 10.200.57.0/29), so a chaos run
 * and those tests can run on one machine without tearing down each other's namespaces.
 */

/** The namespaces' name prefix (≤ 5 characters: interface names are at most 15) and /29 subnet. */
export interface ChaosLinkPlace {
  name: string;
  subnet: string;
}
/** `npm run chaos`'s; the CI test has its own, so both can run on one machine at once. */
export const CHAOS_LINK: ChaosLinkPlace = { name: 'lecch', subnet: '10.200.58' };
const S3_PORT = 7480;
// A tbf burst of 32 kbit (shapedLink.ts) keeps up with up to about 8 Mbit/s at HZ=250.
export const NORMAL_LINK_KBIT = 6_000;
const LATENCY_MS = 400;

export interface ChaosLink {
  /** The gateway as the daemon reaches it, through the link. */
  endpoint: string;
  /** Bytes the daemon sent to the gateway through the link. */
  relay: CountingRelay;
  link: ShapedLink;
  /** Changes the rate of both directions (tc in the router namespace). */
  setRate(rateKbit: number): Promise<void>;
  close(): Promise<void>;
}

function tc(router: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', router, 'tc', ...args], { timeout: 15_000 }, (err, _stdout, stderr) => (err ? reject(new Error(`tc ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()));
  });
}

export async function startChaosLink(rgw: RgwPeer, dir: string, place: ChaosLinkPlace = CHAOS_LINK): Promise<ChaosLink> {
  const { name } = place;
  const link = await createShapedLink({ name, subnet: place.subnet, rateKbit: NORMAL_LINK_KBIT, latencyMs: LATENCY_MS });
  let relay: CountingRelay | undefined;
  try {
    relay = await startCountingRelay({ listen: { path: path.join(dir, 'rgw.sock') }, upstream: { host: '127.0.0.1', port: Number(new URL(rgw.endpoint).port) } });
    const inside = link.spawn(process.execPath, ['-e', NS_RELAY_SOURCE, link.nsAddress, `${S3_PORT}=${relay.socketPath ?? ''}`]);
    await new Promise<void>((resolve, reject) => {
      inside.stdout?.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : undefined));
      inside.once('exit', (code) => reject(new Error(`the relay in the namespace exited (${code})`)));
    });
  } catch (err) {
    await link.close();
    await relay?.close();
    throw err;
  }
  const counted = relay;
  return {
    endpoint: `http://${link.nsAddress}:${S3_PORT}`,
    relay: counted,
    link,
    setRate: async (rateKbit) => {
      // The router shapes both of its sides (shapedLink.ts): towards the server and back to the host.
      for (const dev of [`${name}-rs`, `${name}-rh`]) await tc(`${name}r`, ['qdisc', 'change', 'dev', dev, 'root', 'tbf', 'rate', `${rateKbit}kbit`, 'burst', '32kbit', 'latency', `${LATENCY_MS}ms`]);
    },
    close: async () => {
      await link.close();
      await counted.close();
    },
  };
}
