// Runs inside a node's network namespace (`ip netns exec NODE node forwarder.ts PORT SOCKET`):
// listens on 127.0.0.1:PORT there and relays each connection to a unix socket, which the test
// process (in the root namespace) relays on to the API server. Namespaces thus reach the API
// server on "their" loopback without any address in the root namespace. Plain TypeScript that
// Node runs directly (type stripping), no imports but node:.
import { connect, createServer } from "node:net";

const [port, socket] = process.argv.slice(2);
if (port === undefined || socket === undefined) {
  process.stderr.write("usage: forwarder.ts PORT SOCKET\n");
  process.exit(2);
}
const server = createServer((client) => {
  const upstream = connect(socket);
  client.pipe(upstream).pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close);
  upstream.on("error", close);
});
server.listen(Number(port), "127.0.0.1", () => process.stdout.write(`listening 127.0.0.1:${port} -> ${socket}\n`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
