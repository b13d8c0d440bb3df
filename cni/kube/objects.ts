// The plugin's API objects: the node's BGPVRFInstance of the VPC (one entry per attachment) and
// the cluster-wide RouteTargetClaim that keeps two VPCs from sharing a route target (one holder
// entry per node that has attachments of the VPC; cni/route-target-hold.ts decides when).
import { setTimeout as sleep } from "node:timers/promises";
import { CniError, ErrorCode } from "../error.js";
import {
  apiVersion,
  bgpVrfInstance,
  bgpVrfInstanceName,
  nodeLabel,
  nodeLabelValue,
  routeTargetClaim,
  routeTargetClaimName,
  vniClaimName,
  vniClaim,
  vpcLabel,
  vrfFinalizer,
  type Attachment,
  type BGPVRFInstance,
  type Encapsulation,
  type ObjectMeta,
} from "../../shared/api-types.js";
import type { KubeClient } from "./client.js";
import { KubeError } from "./credentials.js";
import { applyObject, attachmentManager, nodeManager, removeOrDelete } from "./apply.js";

export interface VrfIdentity {
  nodeName: string;
  vpcHex: string;
  asn: number;
  /** The ASN of the route target (cluster-wide); written to the object only when it is not `asn`. */
  routeTargetAsn?: number;
  /** "ASN:NN" text of the VPC's RD and RT. */
  rd: string;
  rt: string;
  table: number;
  encapsulation: Encapsulation;
  /** VXLAN: the VPC's VNI, the node's VTEP and router MAC (published for kvrfd to advertise). */
  vxlan?: { vni: number; vtep: string; routerMac: string };
}

const base = `/apis/${apiVersion}`;

export function bviPath(nodeName: string, vpcHex: string): string {
  return `${base}/${bgpVrfInstance.plural}/${bgpVrfInstanceName(nodeName, vpcHex)}`;
}

/** A holder of a claim: a node with attachments of the claim's VPC. */
export interface Holder {
  node: string;
}

export interface Claim {
  metadata?: ObjectMeta;
  spec?: { routeTarget?: string; vni?: number; vpc?: string; holders?: Holder[] };
}

/**
 * What a VPC claims cluster-wide, each because its value truncates the 48-bit VPC ID: the route
 * target (uint32) and, with VXLAN, the VNI (24 bits). Same mechanics for both: one object per value,
 * holders are nodes, first come first served.
 */
export type ClaimKind = "routeTarget" | "vni";

interface ClaimKindInfo {
  resource: { kind: string; plural: string };
  name(value: string): string;
  spec(value: string): Record<string, unknown>;
  value(c: Claim): string | undefined;
  what(value: string): string;
  collision: ErrorCode;
  why: string;
}

const claimKinds: Record<ClaimKind, ClaimKindInfo> = {
  routeTarget: {
    resource: routeTargetClaim,
    name: routeTargetClaimName,
    spec: (rt) => ({ routeTarget: rt }),
    value: (c) => c.spec?.routeTarget,
    what: (rt) => `route target ${rt}`,
    collision: ErrorCode.RouteTargetCollision,
    why: "their IDs share the low 32 bits, so they would import each other's routes",
  },
  vni: {
    resource: vniClaim,
    name: vniClaimName,
    spec: (vni) => ({ vni: Number(vni) }),
    value: (c) => (c.spec?.vni === undefined ? undefined : String(c.spec.vni)),
    what: (vni) => `VNI ${vni}`,
    collision: ErrorCode.VniCollision,
    why: "their IDs share the low 24 bits, so they would decapsulate into each other's tables",
  },
};

export const claimKindList = Object.keys(claimKinds) as ClaimKind[];

/** A claimed value as the node's marker records it: the route target as is, a VNI as "vni:N". */
export function claimKey(kind: ClaimKind, value: string): string {
  return kind === "routeTarget" ? value : `vni:${value}`;
}

/** "rt-65000-4294967295": one claim per route target (ASN and number). */
export function claimName(rt: string): string {
  return claimKinds.routeTarget.name(rt);
}

function claimPath(kind: ClaimKind, value: string): string {
  const k = claimKinds[kind];
  return `${base}/${k.resource.plural}/${k.name(value)}`;
}

function apiFailure(what: string, err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof KubeError) {
    const code = err.unreachable ? ErrorCode.TryAgainLater : ErrorCode.KubernetesApi;
    return new CniError(code, `${what}: ${err.message}`, "", { cause: err });
  }
  return CniError.from(err);
}

/**
 * Makes this node a holder of the VPC's claim on `value`, first come first served (one server-side
 * apply with the node's field manager; idempotent). A claim held by another VPC refuses the apply
 * — a conflict on spec.vpc with another node's manager (409), or the CRD's rule that a claim's vpc
 * never changes when this node's own manager holds it for the other VPC (422) — and that is a
 * collision (code 103 for route targets, 105 for VNIs) naming both VPCs.
 */
export async function claim(client: KubeClient, kind: ClaimKind, value: string, id: Pick<VrfIdentity, "nodeName" | "vpcHex">): Promise<void> {
  const k = claimKinds[kind];
  const body = {
    apiVersion,
    kind: k.resource.kind,
    metadata: { name: k.name(value), labels: { [vpcLabel]: id.vpcHex } },
    spec: { ...k.spec(value), vpc: id.vpcHex, holders: [{ node: id.nodeName }] },
  };
  try {
    await applyObject(client, claimPath(kind, value), body, nodeManager(id.nodeName));
  } catch (err) {
    if (err instanceof KubeError && (err.conflict || err.status === 422)) {
      const held = await client.request<Claim>("GET", claimPath(kind, value)).then(
        (r) => r.body.spec?.vpc,
        () => undefined,
      );
      if (held !== undefined && held !== id.vpcHex) {
        throw new CniError(k.collision, `${k.what(value)} of VPC ${id.vpcHex} is already claimed by VPC ${held} (${k.resource.kind} ${k.name(value)}): ${k.why}`);
      }
    }
    throw apiFailure(`claiming ${k.what(value)}`, err);
  }
}

/** The route-target claim of the VPC (see claim). */
export function claimRouteTarget(client: KubeClient, id: VrfIdentity): Promise<void> {
  return claim(client, "routeTarget", id.rt, id);
}

/**
 * Gives up this node's hold on a claim; the claim goes with its last holder. With `seen`, the
 * claim as just read (listClaims): if this node is its only holder, it is deleted right away under
 * that read's resourceVersion (one request instead of three); a conflict means it changed since,
 * and the general path takes over.
 */
export async function releaseClaim(client: KubeClient, kind: ClaimKind, value: string, nodeName: string, seen?: Claim): Promise<"gone" | "kept"> {
  const k = claimKinds[kind];
  const ours = (h: Holder): boolean => h.node === nodeName;
  try {
    const rv = seen?.metadata?.resourceVersion;
    if (seen !== undefined && rv !== undefined && (seen.spec?.holders ?? []).every(ours)) {
      const deleted = await client
        .request("DELETE", claimPath(kind, value), {
          body: { apiVersion: "v1", kind: "DeleteOptions", preconditions: { resourceVersion: rv, uid: seen.metadata?.uid } },
        })
        .then(
          () => true,
          (err: unknown) => {
            if (err instanceof KubeError && err.notFound) return true;
            if (err instanceof KubeError && err.conflict) return false;
            throw err;
          },
        );
      if (deleted) return "gone";
    }
    return await removeOrDelete<Claim>({
      client,
      resourcePath: claimPath(kind, value),
      identity: { apiVersion, kind: k.resource.kind, metadata: { name: k.name(value) } },
      manager: nodeManager(nodeName),
      holdsOurs: (c) => (c.spec?.holders ?? []).some(ours),
      onlyOurs: (c) => (c.spec?.holders ?? []).every(ours),
    });
  } catch (err) {
    throw apiFailure(`releasing ${k.what(value)}`, err);
  }
}

export function releaseRouteTarget(client: KubeClient, rt: string, nodeName: string, seen?: Claim): Promise<"gone" | "kept"> {
  return releaseClaim(client, "routeTarget", rt, nodeName, seen);
}

export interface FoundClaim {
  kind: ClaimKind;
  value: string;
  claim: Claim;
}

/** The claims of a VPC, of every kind, found by its label (so neither the ASN nor the speaker config is needed). */
export async function listClaims(client: KubeClient, vpcHex: string): Promise<FoundClaim[]> {
  const lists = await Promise.all(
    claimKindList.map(async (kind): Promise<FoundClaim[]> => {
      const k = claimKinds[kind];
      try {
        const list = await client.request<{ items?: Claim[] }>("GET", `${base}/${k.resource.plural}`, {
          query: { labelSelector: `${vpcLabel}=${vpcHex}` },
        });
        return (list.body.items ?? []).flatMap((c) => {
          const value = k.value(c);
          return value === undefined ? [] : [{ kind, value, claim: c }];
        });
      } catch (err) {
        if (err instanceof KubeError && err.notFound) return [];
        throw apiFailure(`listing ${k.resource.kind}s of VPC ${vpcHex}`, err);
      }
    }),
  );
  return lists.flat();
}

/** Every claim of a kind, cluster-wide (the sweep after a boot finds the VPCs its node holds). */
export async function listAllClaims(client: KubeClient, kind: ClaimKind): Promise<Claim[]> {
  const k = claimKinds[kind];
  try {
    const list = await client.request<{ items?: Claim[] }>("GET", `${base}/${k.resource.plural}`);
    return list.body.items ?? [];
  } catch (err) {
    if (err instanceof KubeError && err.notFound) return [];
    throw apiFailure(`listing ${k.resource.kind}s`, err);
  }
}

function bviBody(id: VrfIdentity, attachment: Attachment): object {
  return {
    apiVersion,
    kind: bgpVrfInstance.kind,
    metadata: {
      name: bgpVrfInstanceName(id.nodeName, id.vpcHex),
      labels: { [nodeLabel]: nodeLabelValue(id.nodeName), [vpcLabel]: id.vpcHex },
      finalizers: [vrfFinalizer],
    },
    spec: {
      nodeName: id.nodeName,
      vpc: id.vpcHex,
      asn: id.asn,
      ...(id.routeTargetAsn !== undefined && id.routeTargetAsn !== id.asn ? { routeTargetASN: id.routeTargetAsn } : {}),
      routeDistinguisher: id.rd,
      importRouteTargets: [id.rt],
      exportRouteTargets: [id.rt],
      table: id.table,
      ...(id.encapsulation === "vxlan" && id.vxlan !== undefined
        ? { encapsulation: "vxlan", vni: id.vxlan.vni, vtep: id.vxlan.vtep, routerMac: id.vxlan.routerMac }
        : { encapsulation: "srv6" }),
      attachments: [attachment],
    },
  };
}

/**
 * Adds this attachment to the node's BGPVRFInstance of the VPC (creating it if needed). An
 * object still being deleted (its last attachment left and kvrfd has not finished) would take
 * our entry with it, so we step back, wait for it to go, and apply again; code 11 if it stays.
 */
export async function publishAttachment(client: KubeClient, id: VrfIdentity, attachment: Attachment, waitMs = 15_000): Promise<void> {
  const path = bviPath(id.nodeName, id.vpcHex);
  const manager = attachmentManager(attachment.containerID, attachment.ifName);
  const deadline = Date.now() + waitMs;
  try {
    for (;;) {
      const got = await applyObject<BGPVRFInstance>(client, path, bviBody(id, attachment), manager);
      if (got.metadata.deletionTimestamp === undefined) return;
      await withdrawAttachment(client, id.nodeName, id.vpcHex, attachment.containerID, attachment.ifName);
      for (;;) {
        if (Date.now() > deadline) {
          throw new CniError(
            ErrorCode.TryAgainLater,
            `BGPVRFInstance ${bgpVrfInstanceName(id.nodeName, id.vpcHex)} is still being deleted (is kvrfd running on ${id.nodeName}?)`,
          );
        }
        await sleep(200);
        const gone = await client.request("GET", path).then(
          () => false,
          (err: unknown) => {
            if (err instanceof KubeError && err.notFound) return true;
            throw err;
          },
        );
        if (gone) break;
      }
    }
  } catch (err) {
    if (err instanceof KubeError && (err.conflict || err.status === 422)) {
      throw new CniError(
        ErrorCode.KubernetesApi,
        `BGPVRFInstance ${bgpVrfInstanceName(id.nodeName, id.vpcHex)} disagrees with this attachment (asn ${id.asn}, rd ${id.rd}, table ${id.table}): ${err.message}`,
        "",
        { cause: err },
      );
    }
    throw apiFailure(`publishing attachment to BGPVRFInstance ${bgpVrfInstanceName(id.nodeName, id.vpcHex)}`, err);
  }
}

/** Removes this attachment from the node's BGPVRFInstance; deletes the object with its last one. */
export async function withdrawAttachment(client: KubeClient, nodeName: string, vpcHex: string, containerID: string, ifName: string): Promise<"gone" | "kept"> {
  const same = (a: Attachment): boolean => a.containerID === containerID && a.ifName === ifName;
  try {
    return await removeOrDelete<BGPVRFInstance>({
      client,
      resourcePath: bviPath(nodeName, vpcHex),
      identity: { apiVersion, kind: bgpVrfInstance.kind, metadata: { name: bgpVrfInstanceName(nodeName, vpcHex) } },
      manager: attachmentManager(containerID, ifName),
      holdsOurs: (o) => (o.spec.attachments ?? []).some(same),
      onlyOurs: (o) => (o.spec.attachments ?? []).every(same),
    });
  } catch (err) {
    throw apiFailure(`withdrawing attachment from BGPVRFInstance ${bgpVrfInstanceName(nodeName, vpcHex)}`, err);
  }
}

/** Reads the node's BGPVRFInstance of the VPC; undefined when it does not exist. */
export async function getBgpVrfInstance(client: KubeClient, nodeName: string, vpcHex: string): Promise<BGPVRFInstance | undefined> {
  try {
    return (await client.request<BGPVRFInstance>("GET", bviPath(nodeName, vpcHex))).body;
  } catch (err) {
    if (err instanceof KubeError && err.notFound) return undefined;
    throw apiFailure(`reading BGPVRFInstance ${bgpVrfInstanceName(nodeName, vpcHex)}`, err);
  }
}
