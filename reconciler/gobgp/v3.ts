// Speaker on gobgpd 3.x (package apipb, service GobgpApi; Debian's 3.10). Wire details live in
// convert-v3.ts; the call sequence is the same as for 4.x (./v4.ts). Unlike 4.8.0, 3.10 answers
// path calls before StartBgp with "bgp server hasn't started yet" and can StopBgp and start again.
import { createClient, type Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { GobgpApi, type PathSchema } from "../../proto/gen/apipb/gobgp_pb.js";
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
  eventFromV3,
  globalTable,
  localVpnPathToV3,
  ribPathsFromV3,
  vpnFamilyV3,
  globalFromV3,
  globalToV3,
  peerFromV3,
  peerToV3,
  unicastFamilyV3,
  vrfFromV3,
  vrfPathsFromV3,
  vrfTable,
  vrfToV3,
  watchRequestV3,
} from "./convert-v3.js";

export class GoBgpV3Speaker implements Speaker {
  readonly api = "v3";
  private readonly client: Client<typeof GobgpApi>;

  private readonly paths: PathBatcher<MessageInitShape<typeof PathSchema>>;

  constructor(private readonly channel: Channel) {
    this.client = createClient(GobgpApi, channel.transport);
    this.paths = new PathBatcher((paths) => this.sendPaths(paths));
  }

  async getGlobal(): Promise<GlobalConfig | undefined> {
    const r = await this.channel.call("GetBgp", (o) => this.client.getBgp({}, o));
    return globalFromV3(r.global);
  }

  /**
   * Refuses ("already-exists") when BGP is running: gobgpd would accept a second StartBgp and
   * silently replace its RIB (VRFs, paths) with an empty one.
   */
  async startBgp(config: GlobalConfig): Promise<void> {
    const global = globalToV3(config);
    const running = await this.getGlobal();
    if (running !== undefined) {
      throw new SpeakerError("already-exists", `StartBgp: BGP is already running (AS ${running.asn}, router ID ${running.routerId})`);
    }
    await this.channel.call("StartBgp", (o) => this.client.startBgp({ global }, o));
  }

  /** A no-op when BGP is not running, as on 4.x. */
  async stopBgp(): Promise<void> {
    if ((await this.getGlobal()) === undefined) return;
    await this.channel.call("StopBgp", (o) => this.client.stopBgp({}, o));
  }

  async listPeers(): Promise<PeerStatus[]> {
    const rs = await this.channel.list("ListPeer", (o) => this.client.listPeer({}, o));
    return rs.flatMap((r) => (r.peer ? [peerFromV3(r.peer)] : []));
  }

  async addPeer(peer: PeerConfig): Promise<void> {
    const p = peerToV3(peer);
    await this.channel.call(`AddPeer ${peer.address}`, (o) => this.client.addPeer({ peer: p }, o));
  }

  async updatePeer(peer: PeerConfig): Promise<void> {
    const p = peerToV3(peer);
    // Soft reset in applies the new config to routes already received.
    await this.channel.call(`UpdatePeer ${peer.address}`, (o) => this.client.updatePeer({ peer: p, doSoftResetIn: true }, o));
  }

  async deletePeer(address: string): Promise<void> {
    checkAddress(address, "DeletePeer address");
    await this.channel.call(`DeletePeer ${address}`, (o) => this.client.deletePeer({ address }, o));
  }

  /** Empty while BGP is not started. */
  async listVrfs(): Promise<Vrf[]> {
    const rs = await this.channel.list("ListVrf", (o) => this.client.listVrf({}, o));
    return rs.flatMap((r) => (r.vrf ? [vrfFromV3(r.vrf)] : []));
  }

  async addVrf(vrf: Vrf): Promise<void> {
    const v = vrfToV3(vrf);
    await this.channel.call(`AddVrf ${vrf.name}`, (o) => this.client.addVrf({ vrf: v }, o));
  }

  async deleteVrf(name: string): Promise<void> {
    if (name === "") throw new SpeakerError("invalid", "DeleteVrf: empty VRF name");
    await this.channel.call(`DeleteVrf ${name}`, (o) => this.client.deleteVrf({ name }, o));
  }

  async listVrfPaths(vrf: string, family: AddressFamily): Promise<VrfPath[]> {
    const rs = await this.channel.list(`ListPath vrf ${vrf} ${family}`, (o) =>
      this.client.listPath({ tableType: vrfTable, name: vrf, family: unicastFamilyV3(family) }, o),
    );
    return rs.flatMap((r) => (r.destination ? vrfPathsFromV3(vrf, r.destination) : []));
  }

  /** Empty while BGP is not started. */
  async listRib(family: AddressFamily): Promise<RibPath[]> {
    try {
      const rs = await this.channel.list(`ListPath global ${family} vpn`, (o) => this.client.listPath({ tableType: globalTable, family: vpnFamilyV3(family) }, o));
      return rs.flatMap((r) => (r.destination ? ribPathsFromV3(r.destination) : []));
    } catch (err) {
      if (err instanceof SpeakerError && err.kind === "not-started") return [];
      throw err;
    }
  }

  async addLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    await this.paths.submit(paths.map((p) => localVpnPathToV3(vrf, p)));
  }

  async deleteLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    await this.paths.submit(paths.map((p) => localVpnPathToV3(vrf, p, true)));
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
    for await (const r of this.channel.watch("WatchEvent", signal, (o) => this.client.watchEvent(watchRequestV3, o))) {
      const e = eventFromV3(r);
      if (e !== undefined) yield e;
    }
  }

  close(): void {
    this.channel.close();
  }
}
