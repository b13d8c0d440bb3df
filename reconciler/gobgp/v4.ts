// Speaker on gobgpd 4.x (package api, service GoBgpService). Wire details live in convert-v4.ts;
// this file is the call sequence, plus guards against gobgpd 4.8.0 behaviours:
//  - AddPath/DeletePath with a vrf_id before StartBgp dereference a nil RIB and crash gobgpd
//    (panic in TableManager.GetVrf), so kvrf never sends them: it originates its paths in VPN
//    form in the global table, where gobgpd checks that BGP runs and answers "not started";
//  - StopBgp ends the server loop for good: afterwards every call answers "server stopped"
//    (classified "unavailable") until gobgpd is restarted, and StopBgp on a server that was never
//    started does the same, so stopBgp() does nothing unless BGP is running.
import { createClient, type Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { GoBgpService, type PathSchema } from "../../proto/gen/api/gobgp_pb.js";
import {
  SpeakerError,
  type AddressFamily,
  type GlobalConfig,
  type LocalPath,
  type PeerConfig,
  type PeerStatus,
  type RibPath,
  type Speaker,
  type SpeakerEvent,
  type Vrf,
  type VrfPath,
} from "../speaker.js";
import type { Channel } from "./channel.js";
import { checkAddress } from "./convert.js";
import { once, PathBatcher } from "./path-batch.js";
import {
  eventFromV4,
  globalTable,
  localVpnPathToV4,
  ribPathsFromV4,
  vpnFamilyV4,
  globalFromV4,
  globalToV4,
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

  private readonly paths: PathBatcher<MessageInitShape<typeof PathSchema>>;

  constructor(private readonly channel: Channel) {
    this.client = createClient(GoBgpService, channel.transport);
    this.paths = new PathBatcher((paths) => this.sendPaths(paths));
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

  async listRib(family: AddressFamily): Promise<RibPath[]> {
    try {
      const rs = await this.channel.list(`ListPath global ${family} vpn`, (o) => this.client.listPath({ tableType: globalTable, family: vpnFamilyV4(family) }, o));
      return rs.flatMap((r) => (r.destination ? ribPathsFromV4(r.destination) : []));
    } catch (err) {
      if (err instanceof SpeakerError && err.kind === "not-started") return [];
      throw err;
    }
  }

  async addLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    await this.paths.submit(paths.map((p) => localVpnPathToV4(vrf, p)));
  }

  async deleteLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    await this.paths.submit(paths.map((p) => localVpnPathToV4(vrf, p, true)));
  }

  /** One path: AddPath or DeletePath; more: one AddPathStream request (gobgpd applies it in one step). */
  private async sendPaths(paths: MessageInitShape<typeof PathSchema>[]): Promise<void> {
    const [first] = paths;
    if (first === undefined) return;
    if (paths.length === 1) {
      // (A DeletePath without a path would withdraw every local path: never send one.)
      if (first.isWithdraw === true) await this.channel.call("DeletePath", (o) => this.client.deletePath({ tableType: globalTable, family: first.family, path: first }, o));
      else await this.channel.call("AddPath", (o) => this.client.addPath({ tableType: globalTable, path: first }, o));
      return;
    }
    await this.channel.call(`AddPathStream (${paths.length} paths)`, (o) => this.client.addPathStream(once({ tableType: globalTable, paths }), o));
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

}
