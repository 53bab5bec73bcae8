import { execFile, spawn, type ChildProcess } from 'node:child_process';

/**
 * A slow link of our own: a network namespace joined to the host by a veth pair, shaped with
 * tc's token bucket filter in both directions (TESTING.md, "Slow links and outages"). Servers
 * run inside it with `spawn`; the link is cut and restored from inside the namespace only.
 *
 * Safety, in this order: an `unreachable` route for the subnet goes in before anything else and
 * comes out last, so no packet for the namespace's addresses can ever leave by the machine's
 * default route — whatever state the veth is in. The host's end is never set down.
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
  /** Takes the namespace's end down (from inside): packets stop, connects fail. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

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

export async function createShapedLink(opts: { name: string; subnet: string; rateKbit: number; latencyMs: number }): Promise<ShapedLink> {
  const { name } = opts;
  const net = `${opts.subnet}.0/30`;
  const host = `${opts.subnet}.1`;
  const ns = `${opts.subnet}.2`;
  const hostIf = `${name}-h`;
  const nsIf = `${name}-n`;
  const inNs = (args: string[]): Promise<string> => run(['ip', 'netns', 'exec', name, ...args]);
  const children = new Set<ChildProcess>();
  const steps = { route: false, netns: false, veth: false };

  const close = async (): Promise<void> => {
    for (const child of children) {
      child.kill('SIGKILL');
      await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    }
    if (steps.veth) await run(['ip', 'link', 'del', hostIf]).catch(() => undefined);
    if (steps.netns) await run(['ip', 'netns', 'del', name]).catch(() => undefined);
    // Last: until now it kept every packet for the subnet on this machine.
    if (steps.route) await run(['ip', 'route', 'del', 'unreachable', net, 'metric', '4000']).catch(() => undefined);
  };

  try {
    // Leftovers of a run that was killed: remove them the same safe way (route last).
    await run(['ip', 'link', 'del', hostIf]).catch(() => undefined);
    await run(['ip', 'netns', 'del', name]).catch(() => undefined);
    await run(['ip', 'route', 'del', 'unreachable', net, 'metric', '4000']).catch(() => undefined);

    await run(['ip', 'route', 'add', 'unreachable', net, 'metric', '4000']);
    steps.route = true;
    await run(['ip', 'netns', 'add', name]);
    steps.netns = true;
    await run(['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    steps.veth = true;
    await run(['ip', 'link', 'set', nsIf, 'netns', name]);
    await run(['ip', 'addr', 'add', `${host}/30`, 'dev', hostIf]);
    await run(['ip', 'link', 'set', hostIf, 'up']);
    await inNs(['ip', 'addr', 'add', `${ns}/30`, 'dev', nsIf]);
    await inNs(['ip', 'link', 'set', nsIf, 'up']);
    await inNs(['ip', 'link', 'set', 'lo', 'up']);
    const tbf = ['root', 'tbf', 'rate', `${opts.rateKbit}kbit`, 'burst', '32kbit', 'latency', `${opts.latencyMs}ms`];
    await run(['tc', 'qdisc', 'add', 'dev', hostIf, ...tbf]);
    await inNs(['tc', 'qdisc', 'add', 'dev', nsIf, ...tbf]);
  } catch (err) {
    await close();
    throw err;
  }

  return {
    nsAddress: ns,
    hostAddress: host,
    spawn(command, args) {
      const child = spawn('ip', ['netns', 'exec', name, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    cut: async () => {
      await inNs(['ip', 'link', 'set', nsIf, 'down']);
    },
    restore: async () => {
      await inNs(['ip', 'link', 'set', nsIf, 'up']);
    },
    close,
  };
}
