// A TCP <-> unix socket relay that network namespaces use to reach the API server on "their"
// 127.0.0.1 without any address in the root namespace. Plain TypeScript that Node runs directly
// (type stripping), no imports but node:.
//   forwarder.ts PORT SOCKET          inside a namespace: listen on 127.0.0.1:PORT, relay to SOCKET
//   forwarder.ts --to HOST:PORT SOCKET in the root namespace: listen on SOCKET, relay to HOST:PORT
import { connect, createServer, type Socket } from "node:net";
import { rmSync } from "node:fs";

const argv = process.argv.slice(2);
const toTcp = argv[0] === "--to";
const [target, socket] = toTcp ? [argv[1], argv[2]] : [argv[0], argv[1]];
if (target === undefined || socket === undefined) {
  process.stderr.write("usage: forwarder.ts PORT SOCKET | forwarder.ts --to HOST:PORT SOCKET\n");
  process.exit(2);
}

function relay(client: Socket, upstream: Socket): void {
  // No Nagle delay on the TCP legs (Go's API server and Node's http sockets disable it too): a
  // relay that holds back small writes adds delayed-ACK stalls (~40 ms) no real path has.
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close);
  upstream.on("error", close);
}

const server = createServer((client) => {
  if (toTcp) {
    const colon = target.lastIndexOf(":");
    relay(client, connect(Number(target.slice(colon + 1)), target.slice(0, colon).replace(/^\[|\]$/g, "")));
  } else {
    relay(client, connect(socket));
  }
});
if (toTcp) {
  rmSync(socket, { force: true });
  server.listen(socket, () => process.stdout.write(`listening ${socket} -> ${target}\n`));
} else {
  server.listen(Number(target), "127.0.0.1", () => process.stdout.write(`listening 127.0.0.1:${target} -> ${socket}\n`));
}
process.on("SIGTERM", () => server.close(() => process.exit(0)));
