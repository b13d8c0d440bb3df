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
  vpcLabel,
  vrfFinalizer,
  type Attachment,
  type BGPVRFInstance,
  type ObjectMeta,
} from "../../shared/api-types.js";
import type { KubeClient } from "./client.js";
import { KubeError } from "./credentials.js";
import { applyObject, attachmentManager, nodeManager, removeOrDelete } from "./apply.js";

export interface VrfIdentity {
  nodeName: string;
  vpcHex: string;
  asn: number;
  /** "ASN:NN" text of the VPC's RD and RT. */
  rd: string;
  rt: string;
  table: number;
}

/** A holder of a route-target claim: a node with attachments of the claim's VPC. */
export interface Holder {
  node: string;
}

export interface Claim {
  metadata?: ObjectMeta;
  spec?: { routeTarget?: string; vpc?: string; holders?: Holder[] };
}

const base = `/apis/${apiVersion}`;

export function bviPath(nodeName: string, vpcHex: string): string {
  return `${base}/${bgpVrfInstance.plural}/${bgpVrfInstanceName(nodeName, vpcHex)}`;
}

/** "rt-65000-4294967295": one claim per route target (ASN and number). */
export function claimName(rt: string): string {
  return `rt-${rt.replace(":", "-").replaceAll(".", "-")}`;
}

function claimPath(rt: string): string {
  return `${base}/${routeTargetClaim.plural}/${claimName(rt)}`;
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
 * Makes this node a holder of the VPC's route target, first come first served (one server-side
 * apply with the node's field manager; idempotent). A claim held by another VPC refuses the apply
 * — a conflict on spec.vpc with another node's manager (409), or the CRD's rule that a claim's vpc
 * never changes when this node's own manager holds it for the other VPC (422) — and that is a
 * route-target collision (code 103).
 */
export async function claimRouteTarget(client: KubeClient, id: VrfIdentity): Promise<void> {
  const body = {
    apiVersion,
    kind: routeTargetClaim.kind,
    metadata: { name: claimName(id.rt), labels: { [vpcLabel]: id.vpcHex } },
    spec: { routeTarget: id.rt, vpc: id.vpcHex, holders: [{ node: id.nodeName }] },
  };
  try {
    await applyObject(client, claimPath(id.rt), body, nodeManager(id.nodeName));
  } catch (err) {
    if (err instanceof KubeError && (err.conflict || err.status === 422)) {
      const held = await client.request<Claim>("GET", claimPath(id.rt)).then(
        (r) => r.body.spec?.vpc,
        () => undefined,
      );
      if (held !== undefined && held !== id.vpcHex) {
        throw new CniError(
          ErrorCode.RouteTargetCollision,
          `route target ${id.rt} of VPC ${id.vpcHex} is already claimed by VPC ${held} (RouteTargetClaim ${claimName(id.rt)}): ` +
            `their IDs share the low 32 bits, so they would import each other's routes`,
        );
      }
    }
    throw apiFailure(`claiming route target ${id.rt}`, err);
  }
}

/**
 * Gives up this node's hold on the route target; the claim goes with its last holder. With
 * `seen`, the claim as just read (listClaims): if this node is its only holder, it is deleted
 * right away under that read's resourceVersion (one request instead of three); a conflict means
 * it changed since, and the general path takes over.
 */
export async function releaseRouteTarget(client: KubeClient, rt: string, nodeName: string, seen?: Claim): Promise<"gone" | "kept"> {
  const ours = (h: Holder): boolean => h.node === nodeName;
  try {
    const rv = seen?.metadata?.resourceVersion;
    if (seen !== undefined && rv !== undefined && (seen.spec?.holders ?? []).every(ours)) {
      const deleted = await client
        .request("DELETE", claimPath(rt), {
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
      resourcePath: claimPath(rt),
      identity: { apiVersion, kind: routeTargetClaim.kind, metadata: { name: claimName(rt) } },
      manager: nodeManager(nodeName),
      holdsOurs: (c) => (c.spec?.holders ?? []).some(ours),
      onlyOurs: (c) => (c.spec?.holders ?? []).every(ours),
    });
  } catch (err) {
    throw apiFailure(`releasing route target ${rt}`, err);
  }
}

/** The claims of a VPC, found by its label (so neither the ASN nor the speaker config is needed). */
export async function listClaims(client: KubeClient, vpcHex: string): Promise<Claim[]> {
  try {
    const list = await client.request<{ items?: Claim[] }>("GET", `${base}/${routeTargetClaim.plural}`, {
      query: { labelSelector: `${vpcLabel}=${vpcHex}` },
    });
    return list.body.items ?? [];
  } catch (err) {
    if (err instanceof KubeError && err.notFound) return [];
    throw apiFailure(`listing route target claims of VPC ${vpcHex}`, err);
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
      routeDistinguisher: id.rd,
      importRouteTargets: [id.rt],
      exportRouteTargets: [id.rt],
      table: id.table,
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
