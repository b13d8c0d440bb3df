// `kvrfd prestop`: the kvrfd container's preStop hook, run when the DaemonSet pod is deleted (a
// rolling update). With graceful restart negotiated, gobgpd must go away without a NOTIFICATION:
// its own SIGTERM path (StopBgp) sends Cease/Peer De-configured, which under the notification
// extension is a Hard Reset, and the peers flush this node's routes. StopBgp with
// allow_graceful_restart (gobgpd 4.x) closes the sessions silently instead, as a crash would, and
// the peers keep the routes, stale, until the new pod's gobgpd re-advertises them. The kernel
// routes stay (kvrfd leaves them on SIGTERM). Never fails the hook: it logs what it did.
import { connectSpeaker } from "./gobgp/connect.js";

export async function prestop(socket: string, log: (line: object) => void): Promise<void> {
  let speaker;
  try {
    speaker = await connectSpeaker(socket, { timeoutMs: 5000 });
  } catch (err) {
    log({ msg: "prestop: gobgpd not reachable; nothing to stop", err: err instanceof Error ? err.message : String(err) });
    return;
  }
  try {
    if ((await speaker.getGlobal()) === undefined) {
      log({ msg: "prestop: BGP not running" });
      return;
    }
    const peers = await speaker.listPeers();
    const graceful = peers.filter((p) => p.gracefulRestart !== undefined).map((p) => p.address);
    if (graceful.length === 0) {
      log({ msg: "prestop: no peer has graceful restart; gobgp-drain withdraws this node's routes" });
      return;
    }
    if (speaker.api !== "v4") {
      log({ msg: "prestop: gobgpd 3.x cannot stop BGP without a NOTIFICATION; peers will withdraw this node's routes", peers: graceful });
      return;
    }
    await speaker.stopBgp({ allowGracefulRestart: true });
    log({ msg: "prestop: BGP stopped without NOTIFICATION; peers keep this node's routes for their restart time", peers: graceful });
  } catch (err) {
    log({ msg: "prestop: stopping BGP failed", err: err instanceof Error ? err.message : String(err) });
  } finally {
    speaker.close();
  }
}
