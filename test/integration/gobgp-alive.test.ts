// images/gobgpd/gobgp-alive (the DaemonSet's liveness probe of gobgpd) against a real gobgpd 4.8:
// alive before BGP starts and while it runs; not alive once StopBgp ended gobgpd's server loop
// (4.x cannot start BGP again: kvrfd stops it when no BGPInstance selects the node) and not alive
// when nothing answers on the socket. Found by the kubelet lab: without it a node whose instance
// came back stayed without BGP until someone restarted the pod.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import type { Speaker } from "../../reconciler/gobgp/speaker.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { repoRoot, testEnvDir, tool } from "../harness/tools.js";

const script = path.join(repoRoot, "images/gobgpd/gobgp-alive");
let dir = "";
let gobgpd: Gobgpd;
let speaker: Speaker;

function alive(socket: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(script, [], { env: { ...process.env, GOBGP: tool("gobgp4"), GOBGPD_SOCKET: socket }, encoding: "utf8" }, (err, stdout) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, out: stdout }),
    );
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(testEnvDir, "gobgp-alive-"));
  gobgpd = await startGobgpd({ binary: tool("gobgpd4"), dir });
  speaker = await connectSpeaker(gobgpd.socket, { timeoutMs: 5000 });
});
afterAll(async () => {
  speaker.close();
  await gobgpd.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("is alive before BGP starts and while it runs; not once StopBgp ended gobgpd 4's server; not without gobgpd", async () => {
  expect(await alive(gobgpd.socket)).toEqual({ code: 0, out: "" });
  await speaker.startBgp({ asn: 65010, routerId: "192.0.2.10", listenPort: -1 });
  expect((await alive(gobgpd.socket)).code).toBe(0);
  await speaker.stopBgp();
  const stopped = await alive(gobgpd.socket);
  expect(stopped.code).toBe(1);
  expect(stopped.out).toContain("server stopped");
  expect((await alive(path.join(dir, "nothing.sock"))).code).toBe(1);
});
