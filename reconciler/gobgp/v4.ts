// Speaker on gobgpd 4.x (package api, service GoBgpService). Wire details live in convert-v4.ts;
// this file is the call sequence, plus guards against two gobgpd 4.8.0 behaviours:
//  - AddPath/DeletePath with a vrf_id before StartBgp dereference a nil RIB and crash gobgpd
//    (panic in TableManager.GetVrf), so path calls check that BGP is running first;
//  - StopBgp ends the server loop for good: afterwards every call answers "server stopped"
//    (classified "unavailable") until gobgpd is restarted, and StopBgp on a server that was never
//    started does the same, so stopBgp() does nothing unless BGP is running.
import { createClient, type Client } from "@connectrpc/connect";
import { GoBgpService } from "../../proto/gen/api/gobgp_pb.js";
import {
  SpeakerError,
  type AddressFamily,
  type GlobalConfig,
  type LocalPath,
  type PeerConfig,
  type PeerStatus,
  type Speaker,
  type SpeakerEvent,
  type Vrf,
  type VrfPath,
} from "../speaker.js";
import type { Channel } from "./channel.js";
import { checkAddress } from "./convert.js";
import {
  eventFromV4,
  globalFromV4,
  globalToV4,
  localPathToV4,
  peerFromV4,
  peerToV4,
  unicastFamilyV4,
  vrfFromV4,
  vrfPathsFromV4,
  vrfTable,
  vrfToV4,
  watchRequestV4,
} from "./convert-v4.js";

export class GoBgpV4Speaker implements Speaker {
  readonly api = "v4";
  private readonly client: Client<typeof GoBgpService>;

  constructor(private readonly channel: Channel) {
    this.client = createClient(GoBgpService, channel.transport);
  }

  async getGlobal(): Promise<GlobalConfig | undefined> {
    const r = await this.channel.call("GetBgp", (o) => this.client.getBgp({}, o));
    return globalFromV4(r.global);
  }

  /**
   * Refuses ("already-exists") when BGP is running: gobgpd would accept a second StartBgp and
   * silently replace its RIB (VRFs, paths) with an empty one.
   */
  async startBgp(config: GlobalConfig): Promise<void> {
    const global = globalToV4(config);
    const running = await this.getGlobal();
    if (running !== undefined) {
      throw new SpeakerError("already-exists", `StartBgp: BGP is already running (AS ${running.asn}, router ID ${running.routerId})`);
    }
    await this.channel.call("StartBgp", (o) => this.client.startBgp({ global }, o));
  }

  /** On gobgpd 4.x this is final: the daemon must be restarted before BGP can start again. */
  async stopBgp(): Promise<void> {
    if ((await this.getGlobal()) === undefined) return;
    await this.channel.call("StopBgp", (o) => this.client.stopBgp({}, o));
  }

  async listPeers(): Promise<PeerStatus[]> {
    const rs = await this.channel.list("ListPeer", (o) => this.client.listPeer({}, o));
    return rs.flatMap((r) => (r.peer ? [peerFromV4(r.peer)] : []));
  }

  async addPeer(peer: PeerConfig): Promise<void> {
    const p = peerToV4(peer);
    await this.channel.call(`AddPeer ${peer.address}`, (o) => this.client.addPeer({ peer: p }, o));
  }

  async updatePeer(peer: PeerConfig): Promise<void> {
    const p = peerToV4(peer);
    // Soft reset in applies the new config to routes already received.
    await this.channel.call(`UpdatePeer ${peer.address}`, (o) => this.client.updatePeer({ peer: p, doSoftResetIn: true }, o));
  }

  async deletePeer(address: string): Promise<void> {
    checkAddress(address, "DeletePeer address");
    await this.channel.call(`DeletePeer ${address}`, (o) => this.client.deletePeer({ address }, o));
  }

  /** Empty while BGP is not started (gobgpd 4.x says "not started"; 3.x lists nothing). */
  async listVrfs(): Promise<Vrf[]> {
    try {
      const rs = await this.channel.list("ListVrf", (o) => this.client.listVrf({}, o));
      return rs.flatMap((r) => (r.vrf ? [vrfFromV4(r.vrf)] : []));
    } catch (err) {
      if (err instanceof SpeakerError && err.kind === "not-started") return [];
      throw err;
    }
  }

  async addVrf(vrf: Vrf): Promise<void> {
    const v = vrfToV4(vrf);
    await this.channel.call(`AddVrf ${vrf.name}`, (o) => this.client.addVrf({ vrf: v }, o));
  }

  async deleteVrf(name: string): Promise<void> {
    if (name === "") throw new SpeakerError("invalid", "DeleteVrf: empty VRF name");
    await this.channel.call(`DeleteVrf ${name}`, (o) => this.client.deleteVrf({ name }, o));
  }

  async listVrfPaths(vrf: string, family: AddressFamily): Promise<VrfPath[]> {
    const rs = await this.channel.list(`ListPath vrf ${vrf} ${family}`, (o) =>
      this.client.listPath({ tableType: vrfTable, name: vrf, family: unicastFamilyV4(family) }, o),
    );
    return rs.flatMap((r) => (r.destination ? vrfPathsFromV4(vrf, r.destination) : []));
  }

  /** Adding the same prefix again replaces the VRF's local path for it (GoBGP implicit withdraw). */
  async addLocalPath(path: LocalPath): Promise<void> {
    const p = localPathToV4(path);
    const what = `AddPath vrf ${path.vrf} ${path.prefix}`;
    await this.requireStarted(what);
    await this.channel.call(what, (o) => this.client.addPath({ tableType: vrfTable, vrfId: path.vrf, path: p }, o));
  }

  /** Withdraws the VRF's local path for the prefix; withdrawing one that is not there succeeds. */
  async deleteLocalPath(path: LocalPath): Promise<void> {
    const p = localPathToV4(path);
    const what = `DeletePath vrf ${path.vrf} ${path.prefix}`;
    await this.requireStarted(what);
    await this.channel.call(what, (o) =>
      this.client.deletePath({ tableType: vrfTable, vrfId: path.vrf, family: p.family, path: p }, o),
    );
  }

  async *watch(signal: AbortSignal): AsyncGenerator<SpeakerEvent, void, undefined> {
    for await (const r of this.channel.watch("WatchEvent", signal, (o) => this.client.watchEvent(watchRequestV4, o))) {
      const e = eventFromV4(r);
      if (e !== undefined) yield e;
    }
  }

  close(): void {
    this.channel.close();
  }

  private async requireStarted(what: string): Promise<void> {
    if ((await this.getGlobal()) === undefined) throw new SpeakerError("not-started", `${what}: bgp server hasn't started yet`);
  }
}
