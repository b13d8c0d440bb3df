// The Speaker on gobgpd, for both APIs: the call sequence and its guards live here once, and each
// API supplies a Wire (./v4.ts, ./v3.ts): its client, its TableType numbers, and the converters of
// the messages that differ between the two (convert-v4.ts, convert-v3.ts). Global and Peer have
// the same fields in both APIs and are converted by convert-common.ts. This file imports no
// generated code, so that the v3 API is still loaded only when gobgpd speaks it (connect.ts).
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import {
  SpeakerError,
  type DefinedSet,
  type DefinedSetType,
  type GlobalConfig,
  type LocalPath,
  type PeerConfig,
  type PeerStatus,
  type PolicyAssignment,
  type PolicyDirection,
  type RibFamily,
  type RibPath,
  type RoutingPolicy,
  type SoftResetDirection,
  type Speaker,
  type SpeakerEvent,
  type Vrf,
  type VrfPath,
} from "./speaker.js";
import type { Channel } from "./channel.js";
import { checkAddress, ribFamily, vrfViewFamily } from "./convert.js";
import {
  assignmentFrom,
  assignmentTo,
  definedSetTo,
  globalFrom,
  globalTo,
  peerFrom,
  peerTo,
  policyTo,
  type AssignmentMessage,
  type GlobalMessage,
  type PeerMessage,
  type PolicyEnums,
  type PolicyMessage,
} from "./convert-common.js";
import { once, PathBatcher } from "./path-batch.js";

/** The message types that differ between the two APIs. */
export interface WireMessages {
  vrf: unknown;
  vrfInit: unknown;
  destination: unknown;
  /** A path to add or delete (init shape). */
  pathInit: { isWithdraw?: boolean; family?: unknown };
  watchRequest: unknown;
  watchResponse: unknown;
}

/** The schemas of those messages, which have the same names in both APIs' gobgp_pb.ts. */
interface WireSchemas {
  VrfSchema: DescMessage;
  DestinationSchema: DescMessage;
  PathSchema: DescMessage;
  WatchEventRequestSchema: DescMessage;
  WatchEventResponseSchema: DescMessage;
}

/** The WireMessages of one API, from its generated module: `MessagesOf<typeof api>`. */
export interface MessagesOf<S extends WireSchemas> {
  vrf: MessageShape<S["VrfSchema"]>;
  vrfInit: MessageInitShape<S["VrfSchema"]>;
  destination: MessageShape<S["DestinationSchema"]>;
  pathInit: MessageInitShape<S["PathSchema"]>;
  watchRequest: MessageInitShape<S["WatchEventRequestSchema"]>;
  watchResponse: MessageShape<S["WatchEventResponseSchema"]>;
}

/**
 * The calls kvrf makes, as both generated clients (api.GoBgpService, apipb.GobgpApi) have them:
 * the same names and request fields. Each wire's client is checked against it where it is built.
 */
export interface GobgpClient<M extends WireMessages> {
  getBgp(req: object, opts: CallOptions): Promise<{ global?: GlobalMessage | undefined }>;
  startBgp(req: { global: GlobalMessage }, opts: CallOptions): Promise<unknown>;
  stopBgp(req: object, opts: CallOptions): Promise<unknown>;
  listPeer(req: object, opts: CallOptions): AsyncIterable<{ peer?: PeerMessage | undefined }>;
  addPeer(req: { peer: ReturnType<typeof peerTo> }, opts: CallOptions): Promise<unknown>;
  updatePeer(req: { peer: ReturnType<typeof peerTo>; doSoftResetIn: boolean }, opts: CallOptions): Promise<unknown>;
  deletePeer(req: { address: string }, opts: CallOptions): Promise<unknown>;
  listVrf(req: object, opts: CallOptions): AsyncIterable<{ vrf?: M["vrf"] | undefined }>;
  addVrf(req: { vrf: M["vrfInit"] }, opts: CallOptions): Promise<unknown>;
  deleteVrf(req: { name: string }, opts: CallOptions): Promise<unknown>;
  listPath(
    req: { tableType: number; name?: string; family: { afi: number; safi: number } },
    opts: CallOptions,
  ): AsyncIterable<{ destination?: M["destination"] | undefined }>;
  addPath(req: { tableType: number; path: M["pathInit"] }, opts: CallOptions): Promise<unknown>;
  deletePath(req: { tableType: number; family: M["pathInit"]["family"]; path: M["pathInit"] }, opts: CallOptions): Promise<unknown>;
  addPathStream(reqs: AsyncIterable<{ tableType: number; paths: M["pathInit"][] }>, opts: CallOptions): Promise<unknown>;
  watchEvent(req: M["watchRequest"], opts: CallOptions): AsyncIterable<M["watchResponse"]>;
  resetPeer(req: { address: string; soft: boolean; direction: number; communication?: string }, opts: CallOptions): Promise<unknown>;
  listDefinedSet(req: { definedType: number }, opts: CallOptions): AsyncIterable<{ definedSet?: { name: string } | undefined }>;
  addDefinedSet(req: { definedSet: { definedType: number; name: string; list: string[] } }, opts: CallOptions): Promise<unknown>;
  deleteDefinedSet(req: { definedSet: { definedType: number; name: string }; all: boolean }, opts: CallOptions): Promise<unknown>;
  listPolicy(req: object, opts: CallOptions): AsyncIterable<{ policy?: { name: string } | undefined }>;
  addPolicy(req: { policy: PolicyMessage; referExistingStatements: boolean }, opts: CallOptions): Promise<unknown>;
  deletePolicy(req: { policy: { name: string }; preserveStatements: boolean; all: boolean }, opts: CallOptions): Promise<unknown>;
  listPolicyAssignment(req: { name: string; direction: number }, opts: CallOptions): AsyncIterable<{ assignment?: AssignmentMessage | undefined }>;
  setPolicyAssignment(req: { assignment: AssignmentMessage }, opts: CallOptions): Promise<unknown>;
}

/** What one API version supplies to the adapter. */
export interface Wire<M extends WireMessages> {
  readonly api: "v4" | "v3";
  readonly client: GobgpClient<M>;
  /** TableType numbers: the enums differ (v3 has no UNSPECIFIED value). */
  readonly globalTable: number;
  readonly vrfTable: number;
  /** The policy enums' numbers. */
  readonly policy: PolicyEnums;
  readonly watchRequest: M["watchRequest"];
  vrfTo(vrf: Vrf): M["vrfInit"];
  vrfFrom(v: M["vrf"]): Vrf;
  vrfPathsFrom(vrf: string, dest: M["destination"]): VrfPath[];
  ribPathsFrom(dest: M["destination"]): RibPath[];
  /** A local path of `vrf` in the global-table form of its encapsulation (VPN or EVPN type 5). */
  localPathTo(vrf: Vrf, path: LocalPath, withdraw?: boolean): M["pathInit"];
  eventFrom(r: M["watchResponse"]): SpeakerEvent | undefined;
}

export class GoBgpSpeaker<M extends WireMessages> implements Speaker {
  readonly api: "v4" | "v3";
  private readonly client: GobgpClient<M>;
  private readonly paths: PathBatcher<M["pathInit"]>;

  constructor(
    private readonly channel: Channel,
    private readonly wire: Wire<M>,
  ) {
    this.api = wire.api;
    this.client = wire.client;
    this.paths = new PathBatcher((paths) => this.sendPaths(paths));
  }

  async getGlobal(): Promise<GlobalConfig | undefined> {
    const r = await this.channel.call("GetBgp", (o) => this.client.getBgp({}, o));
    return globalFrom(r.global);
  }

  /**
   * Refuses ("already-exists") when BGP is running: gobgpd would accept a second StartBgp and
   * silently replace its RIB (VRFs, paths) with an empty one.
   */
  async startBgp(config: GlobalConfig): Promise<void> {
    const global = globalTo(config);
    const running = await this.getGlobal();
    if (running !== undefined) {
      throw new SpeakerError("already-exists", `StartBgp: BGP is already running (AS ${running.asn}, router ID ${running.routerId})`);
    }
    await this.channel.call("StartBgp", (o) => this.client.startBgp({ global }, o));
  }

  /**
   * A no-op when BGP is not running (gobgpd 4.x would stop its server for good, see v4.ts). On
   * 4.x this is final: the daemon must be restarted before BGP can start again; 3.x can.
   */
  async stopBgp(opts: { allowGracefulRestart?: boolean } = {}): Promise<void> {
    if ((await this.getGlobal()) === undefined) return;
    // v3's StopBgpRequest has no field: an unknown one is not sent.
    await this.channel.call("StopBgp", (o) => this.client.stopBgp(opts.allowGracefulRestart === true && this.api === "v4" ? { allowGracefulRestart: true } : {}, o));
  }

  async listPeers(): Promise<PeerStatus[]> {
    const rs = await this.channel.list("ListPeer", (o) => this.client.listPeer({}, o));
    return rs.flatMap((r) => (r.peer ? [peerFrom(r.peer)] : []));
  }

  async addPeer(peer: PeerConfig): Promise<void> {
    const p = peerTo(peer);
    await this.channel.call(`AddPeer ${peer.address}`, (o) => this.client.addPeer({ peer: p }, o));
  }

  async updatePeer(peer: PeerConfig): Promise<void> {
    const p = peerTo(peer);
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
      return rs.flatMap((r) => (r.vrf ? [this.wire.vrfFrom(r.vrf)] : []));
    } catch (err) {
      if (err instanceof SpeakerError && err.kind === "not-started") return [];
      throw err;
    }
  }

  async addVrf(vrf: Vrf): Promise<void> {
    const v = this.wire.vrfTo(vrf);
    await this.channel.call(`AddVrf ${vrf.name}`, (o) => this.client.addVrf({ vrf: v }, o));
  }

  async deleteVrf(name: string): Promise<void> {
    if (name === "") throw new SpeakerError("invalid", "DeleteVrf: empty VRF name");
    await this.channel.call(`DeleteVrf ${name}`, (o) => this.client.deleteVrf({ name }, o));
  }

  async listVrfPaths(vrf: string, family: RibFamily): Promise<VrfPath[]> {
    const rs = await this.channel.list(`ListPath vrf ${vrf} ${family}`, (o) =>
      this.client.listPath({ tableType: this.wire.vrfTable, name: vrf, family: vrfViewFamily(family) }, o),
    );
    return rs.flatMap((r) => (r.destination ? this.wire.vrfPathsFrom(vrf, r.destination) : []));
  }

  /** Empty while BGP is not started. */
  async listRib(family: RibFamily): Promise<RibPath[]> {
    try {
      const rs = await this.channel.list(`ListPath global ${family === "evpn" ? "evpn" : `${family} vpn`}`, (o) =>
        this.client.listPath({ tableType: this.wire.globalTable, family: ribFamily(family) }, o),
      );
      return rs.flatMap((r) => (r.destination ? this.wire.ribPathsFrom(r.destination) : []));
    } catch (err) {
      if (err instanceof SpeakerError && err.kind === "not-started") return [];
      throw err;
    }
  }

  async addLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    await this.paths.submit(paths.map((p) => this.wire.localPathTo(vrf, p)));
  }

  async deleteLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    await this.paths.submit(paths.map((p) => this.wire.localPathTo(vrf, p, true)));
  }

  /** One path: AddPath or DeletePath; more: one AddPathStream request (gobgpd applies it in one step). */
  private async sendPaths(paths: M["pathInit"][]): Promise<void> {
    const [first] = paths;
    if (first === undefined) return;
    const tableType = this.wire.globalTable;
    if (paths.length === 1) {
      // (A DeletePath without a path would withdraw every local path: never send one.)
      if (first.isWithdraw === true) await this.channel.call("DeletePath", (o) => this.client.deletePath({ tableType, family: first.family, path: first }, o));
      else await this.channel.call("AddPath", (o) => this.client.addPath({ tableType, path: first }, o));
      return;
    }
    await this.channel.call(`AddPathStream (${paths.length} paths)`, (o) => this.client.addPathStream(once({ tableType, paths }), o));
  }

  async listDefinedSets(type: DefinedSetType): Promise<string[]> {
    const definedType = this.wire.policy.definedType[type];
    const rs = await this.channel.list(`ListDefinedSet ${type}`, (o) => this.client.listDefinedSet({ definedType }, o));
    return rs.flatMap((r) => (r.definedSet !== undefined ? [r.definedSet.name] : []));
  }

  async addDefinedSet(set: DefinedSet): Promise<void> {
    const definedSet = definedSetTo(set, this.wire.policy);
    await this.channel.call(`AddDefinedSet ${set.name}`, (o) => this.client.addDefinedSet({ definedSet }, o));
  }

  async deleteDefinedSet(type: DefinedSetType, name: string): Promise<void> {
    const definedSet = { definedType: this.wire.policy.definedType[type], name };
    await this.channel.call(`DeleteDefinedSet ${name}`, (o) => this.client.deleteDefinedSet({ definedSet, all: true }, o));
  }

  async listPolicies(): Promise<string[]> {
    const rs = await this.channel.list("ListPolicy", (o) => this.client.listPolicy({}, o));
    return rs.flatMap((r) => (r.policy !== undefined ? [r.policy.name] : []));
  }

  async addPolicy(policy: RoutingPolicy): Promise<void> {
    const p = policyTo(policy, this.wire.policy);
    await this.channel.call(`AddPolicy ${policy.name}`, (o) => this.client.addPolicy({ policy: p, referExistingStatements: false }, o));
  }

  async deletePolicy(name: string): Promise<void> {
    // all: the whole policy (without it gobgpd removes only the statements the request lists);
    // preserveStatements false: its statements go with it, or their defined sets stay in use.
    await this.channel.call(`DeletePolicy ${name}`, (o) => this.client.deletePolicy({ policy: { name }, preserveStatements: false, all: true }, o));
  }

  async getGlobalPolicyAssignment(direction: PolicyDirection): Promise<PolicyAssignment> {
    const rs = await this.channel.list(`ListPolicyAssignment global ${direction}`, (o) =>
      this.client.listPolicyAssignment({ name: "global", direction: this.wire.policy.direction[direction] }, o),
    );
    return assignmentFrom(rs[0]?.assignment, this.wire.policy);
  }

  async setGlobalPolicyAssignment(direction: PolicyDirection, assignment: PolicyAssignment): Promise<void> {
    const a = assignmentTo(direction, assignment, this.wire.policy);
    await this.channel.call(`SetPolicyAssignment global ${direction}`, (o) => this.client.setPolicyAssignment({ assignment: a }, o));
  }

  async resetPeer(address: string, how: SoftResetDirection | "hard"): Promise<void> {
    checkAddress(address, "ResetPeer address");
    if (how === "hard") {
      await this.channel.call(`ResetPeer ${address}`, (o) => this.client.resetPeer({ address, soft: false, direction: 0, communication: "kvrf: session policy changed" }, o));
      return;
    }
    const direction = this.wire.policy.resetDirection[how];
    await this.channel.call(`ResetPeer ${address} soft ${how}`, (o) => this.client.resetPeer({ address, soft: true, direction }, o));
  }

  async *watch(signal: AbortSignal): AsyncGenerator<SpeakerEvent, void, undefined> {
    for await (const r of this.channel.watch("WatchEvent", signal, (o) => this.client.watchEvent(this.wire.watchRequest, o))) {
      const e = this.wire.eventFrom(r);
      if (e !== undefined) yield e;
    }
  }

  close(): void {
    this.channel.close();
  }
}
