// Runs inside a network namespace (ip netns exec NS node nsRelay.mjs HOST PORT=SOCKET ...): for
// each PORT it listens on HOST (an address of the namespace) and forwards every connection to
// the unix SOCKET, which a test process on the host serves. Unix sockets cross network
// namespaces (they live in the file system), so the host side needs no address outside
// 127.0.0.1, and everything between the two crosses the namespace's shaped link.
import net from 'node:net';

const [host, ...pairs] = process.argv.slice(2);
let pending = pairs.length;
for (const pair of pairs) {
  const [port, socketPath] = pair.split('=');
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  server.listen(Number(port), host, () => {
    if (--pending === 0) process.stdout.write('ready\n');
  });
}
process.on('SIGTERM', () => process.exit(0));
