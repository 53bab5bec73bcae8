import { execFile, spawn, type ChildProcess } from 'node:child_process';

/**
 * A slow link of our own, built like a classroom's uplink: the host (the classroom PC) — a
 * router namespace (the modem) — a server namespace (the storage). The router shapes both of
 * its outgoing sides with tc's token bucket filter (TESTING.md, "Slow links and outages"), so
 * the queue builds in the router, as it does in a real modem: shaping the sending host's own
 * device instead would let the kernel's TCP small-queues keep each socket's share of that queue
 * tiny, and no round trip would ever show the queue that yield must notice.
 *
 * Servers run inside the server namespace with `spawn`; the link is cut and restored from inside
 * it (its own end goes down), never on the host.
 *
 * Safety, in this order: an `unreachable` route for the whole /29 goes in before anything else
 * and comes out last, so no packet for these addresses can ever leave by the machine's default
 * route — whatever state the veths are in.
 *
 * Needs root and iproute2 (ip, tc). This kernel has no netem: rate and queue only.
 */

export interface ShapedLink {
  /** The namespace's address (servers listen here). */
  nsAddress: string;
  /** The host end's address. */
  hostAddress: string;
  /** Starts a process inside the namespace. */
  spawn(command: string, args: string[]): ChildProcess;
  /** Takes the server namespace's end down (from inside it): packets stop, connects fail. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A relay to run inside the server namespace (`node -e NS_RELAY_SOURCE HOST PORT=SOCKET ...`):
 * for each PORT it listens on HOST (the namespace's address) and forwards every connection to
 * the unix SOCKET, which the test serves on the host. Unix sockets cross network namespaces
 * (they live in the file system), so the host side needs no address but 127.0.0.1, and every
 * byte between the two crosses the shaped link. Prints "ready" once listening.
 */
export const NS_RELAY_SOURCE = `
const net = require('node:net');
const [host, ...pairs] = process.argv.slice(1);
let pending = pairs.length;
for (const pair of pairs) {
  const [port, socketPath] = pair.split('=');
  net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    for (const s of [client, upstream]) { s.on('error', close); s.on('close', close); }
  }).listen(Number(port), host, () => { if (--pending === 0) process.stdout.write('ready\\n'); });
}
`;

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(args[0] as string, args.slice(1), { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Why shaped links cannot be made here, or undefined when they can. */
export function shapedLinkUnsupportedReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)';
  return undefined;
}

/** `subnet` is the first three octets of a /29 used as two /30s: host–router and router–server. */
export async function createShapedLink(opts: { name: string; subnet: string; rateKbit: number; latencyMs: number }): Promise<ShapedLink> {
  const { name, subnet } = opts;
  const all = `${subnet}.0/29`;
  const far = `${subnet}.4/30`;
  const host = `${subnet}.1`;
  const routerNear = `${subnet}.2`;
  const routerFar = `${subnet}.5`;
  const server = `${subnet}.6`;
  const router = `${name}r`;
  const srv = `${name}s`;
  const hostIf = `${name}-h`;
  const rNearIf = `${name}-rh`;
  const rFarIf = `${name}-rs`;
  const sIf = `${name}-s`;
  const inR = (args: string[]): Promise<string> => run(['ip', 'netns', 'exec', router, ...args]);
  const inS = (args: string[]): Promise<string> => run(['ip', 'netns', 'exec', srv, ...args]);
  const children = new Set<ChildProcess>();
  let routeAdded = false;

  const teardown = async (): Promise<void> => {
    await run(['ip', 'link', 'del', hostIf]).catch(() => undefined);
    await run(['ip', 'netns', 'del', srv]).catch(() => undefined);
    await run(['ip', 'netns', 'del', router]).catch(() => undefined);
  };
  const close = async (): Promise<void> => {
    for (const child of children) {
      child.kill('SIGKILL');
      await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    }
    await teardown();
    // Last: until now it kept every packet for these addresses on this machine.
    if (routeAdded) await run(['ip', 'route', 'del', 'unreachable', all, 'metric', '4000']).catch(() => undefined);
  };

  try {
    await run(['ip', 'route', 'add', 'unreachable', all, 'metric', '4000']).catch(async (err: unknown) => {
      // Left by a run that was killed: keep it (it is what makes the rest safe) and reuse it.
      if (!(await run(['ip', 'route', 'show', 'table', 'main'])).includes(`unreachable ${all}`)) throw err;
    });
    routeAdded = true;
    // Leftovers of a run that was killed.
    await teardown();
    await run(['ip', 'netns', 'add', router]);
    await run(['ip', 'netns', 'add', srv]);
    await run(['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', rNearIf]);
    await run(['ip', 'link', 'set', rNearIf, 'netns', router]);
    await run(['ip', 'link', 'add', rFarIf, 'type', 'veth', 'peer', 'name', sIf]);
    await run(['ip', 'link', 'set', rFarIf, 'netns', router]);
    await run(['ip', 'link', 'set', sIf, 'netns', srv]);
    await run(['ip', 'addr', 'add', `${host}/30`, 'dev', hostIf]);
    await run(['ip', 'link', 'set', hostIf, 'up']);
    await run(['ip', 'route', 'add', far, 'via', routerNear]);
    await inR(['ip', 'addr', 'add', `${routerNear}/30`, 'dev', rNearIf]);
    await inR(['ip', 'addr', 'add', `${routerFar}/30`, 'dev', rFarIf]);
    await inR(['ip', 'link', 'set', rNearIf, 'up']);
    await inR(['ip', 'link', 'set', rFarIf, 'up']);
    await inR(['ip', 'link', 'set', 'lo', 'up']);
    await inR(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await inS(['ip', 'addr', 'add', `${server}/30`, 'dev', sIf]);
    await inS(['ip', 'link', 'set', sIf, 'up']);
    await inS(['ip', 'link', 'set', 'lo', 'up']);
    await inS(['ip', 'route', 'add', 'default', 'via', routerFar]);
    const tbf = ['root', 'tbf', 'rate', `${opts.rateKbit}kbit`, 'burst', '32kbit', 'latency', `${opts.latencyMs}ms`];
    await inR(['tc', 'qdisc', 'add', 'dev', rFarIf, ...tbf]);
    await inR(['tc', 'qdisc', 'add', 'dev', rNearIf, ...tbf]);
  } catch (err) {
    await close();
    throw err;
  }

  return {
    nsAddress: server,
    hostAddress: host,
    spawn(command, args) {
      const child = spawn('ip', ['netns', 'exec', srv, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    cut: async () => {
      await inS(['ip', 'link', 'set', sIf, 'down']);
    },
    restore: async () => {
      await inS(['ip', 'link', 'set', sIf, 'up']);
      // The default route went with the link; it comes back only when added again.
      await inS(['ip', 'route', 'replace', 'default', 'via', routerFar]);
    },
    close,
  };
}
