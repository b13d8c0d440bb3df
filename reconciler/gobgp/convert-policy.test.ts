// The routing-policy messages of both APIs (session policies): the same converters with each
// API's enum numbers, through the wire format of that API's generated schemas, and read back as
// gobgpd 4.8 and 3.10 number them (v3 has no UNSPECIFIED values: ANY and IN are 0 there).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import * as v3 from "../../proto/gen/apipb/gobgp_pb.js";
import * as v4 from "../../proto/gen/api/gobgp_pb.js";
import { assignmentFrom, assignmentTo, definedSetTo, policyTo } from "./convert-common.js";
import { policyEnumsV3 } from "./convert-v3.js";
import { policyEnumsV4 } from "./convert-v4.js";
import type { RoutingPolicy } from "./speaker.js";

const policy: RoutingPolicy = {
  name: "kvrf-0123abcd-import",
  statements: [
    { name: "kvrf-0123abcd-in-0-foreign", neighborSet: "kvrf-0123abcd-peer-0", extCommunitySet: "kvrf-0123abcd-foreign-0", action: "reject" },
    { name: "kvrf-0123abcd-in-0-vpcs", neighborSet: "kvrf-0123abcd-peer-0", extCommunitySet: "kvrf-0123abcd-rt-0", action: "accept" },
    { name: "kvrf-0123abcd-in-0-other", neighborSet: "kvrf-0123abcd-peer-0", action: "reject" },
  ],
};

describe("policy messages, v4 (api)", () => {
  it("a policy: MatchSet ANY (1), ACCEPT 1 / REJECT 2, no ext-community condition where none is set", () => {
    const bytes = toBinary(v4.AddPolicyRequestSchema, create(v4.AddPolicyRequestSchema, { policy: policyTo(policy, policyEnumsV4) }));
    const back = fromBinary(v4.AddPolicyRequestSchema, bytes).policy;
    expect(back?.name).toBe(policy.name);
    expect(back?.statements.map((s) => [s.name, s.conditions?.neighborSet?.type, s.conditions?.neighborSet?.name, s.conditions?.extCommunitySet?.type, s.conditions?.extCommunitySet?.name, s.actions?.routeAction])).toEqual([
      ["kvrf-0123abcd-in-0-foreign", v4.MatchSet_Type.ANY, "kvrf-0123abcd-peer-0", 1, "kvrf-0123abcd-foreign-0", 2],
      ["kvrf-0123abcd-in-0-vpcs", 1, "kvrf-0123abcd-peer-0", 1, "kvrf-0123abcd-rt-0", 1],
      ["kvrf-0123abcd-in-0-other", 1, "kvrf-0123abcd-peer-0", undefined, undefined, 2],
    ]);
  });

  it("defined sets: NEIGHBOR 2, EXT_COMMUNITY 6", () => {
    const n = fromBinary(v4.DefinedSetSchema, toBinary(v4.DefinedSetSchema, create(v4.DefinedSetSchema, definedSetTo({ type: "neighbor", name: "p", list: ["192.0.2.2/32"] }, policyEnumsV4))));
    expect([n.definedType, n.name, n.list]).toEqual([2, "p", ["192.0.2.2/32"]]);
    expect(definedSetTo({ type: "ext-community", name: "r", list: ["rt:^65000:10$"] }, policyEnumsV4).definedType).toBe(v4.DefinedType.EXT_COMMUNITY);
    expect(() => definedSetTo({ type: "neighbor", name: "", list: [] }, policyEnumsV4)).toThrow(/empty name/);
  });

  it("the global assignment: IMPORT 1 / EXPORT 2, policies by name, the default; read back", () => {
    const a = assignmentTo("export", { policies: ["kvrf-x-export", "ops"], defaultAction: "accept" }, policyEnumsV4);
    const wire = fromBinary(v4.PolicyAssignmentSchema, toBinary(v4.PolicyAssignmentSchema, create(v4.PolicyAssignmentSchema, a)));
    expect([wire.name, wire.direction, wire.policies.map((p) => p.name), wire.defaultAction]).toEqual(["global", 2, ["kvrf-x-export", "ops"], 1]);
    expect(assignmentFrom(wire, policyEnumsV4)).toEqual({ policies: ["kvrf-x-export", "ops"], defaultAction: "accept" });
    expect(assignmentFrom(create(v4.PolicyAssignmentSchema, {}), policyEnumsV4)).toEqual({ policies: [], defaultAction: "none" });
    expect(assignmentFrom(undefined, policyEnumsV4)).toEqual({ policies: [], defaultAction: "none" });
  });

  it("soft reset directions IN 1, OUT 2, BOTH 3", () => {
    expect(policyEnumsV4.resetDirection).toEqual({ in: 1, out: 2, both: 3 });
  });
});

describe("the next-hop condition, both APIs (next_hop_in_list = 10)", () => {
  const pods: RoutingPolicy = {
    name: "kvrf-0123abcd-export",
    statements: [{ name: "kvrf-0123abcd-out-0-pods", neighborSet: "kvrf-0123abcd-peer-0", nextHops: ["192.0.2.1", "2001:db8::1", "198.51.100.0/24"], action: "accept" }],
  };

  it.each([
    ["v4", v4.AddPolicyRequestSchema, policyEnumsV4],
    ["v3", v3.AddPolicyRequestSchema, policyEnumsV3],
  ] as const)("%s: addresses as address/length, set only where asked", (_api, schema, enums) => {
    const back = fromBinary(schema, toBinary(schema, create(schema, { policy: policyTo(pods, enums) }))).policy;
    expect(back?.statements[0]?.conditions?.nextHopInList).toEqual(["192.0.2.1/32", "2001:db8::1/128", "198.51.100.0/24"]);
    const plain = fromBinary(schema, toBinary(schema, create(schema, { policy: policyTo(policy, enums) }))).policy;
    expect(plain?.statements.map((s) => s.conditions?.nextHopInList)).toEqual([[], [], []]);
  });

  it("refuses an empty list, which gobgpd would take as no condition", () => {
    const empty: RoutingPolicy = { name: "p", statements: [{ name: "s", neighborSet: "n", nextHops: [], action: "accept" }] };
    expect(() => policyTo(empty, policyEnumsV4)).toThrow(/empty next-hop list/);
  });
});

describe("policy messages, v3 (apipb)", () => {
  it("a policy: MatchSet ANY is 0 (the default, so the wire carries no type), ACCEPT 1 / REJECT 2", () => {
    const bytes = toBinary(v3.AddPolicyRequestSchema, create(v3.AddPolicyRequestSchema, { policy: policyTo(policy, policyEnumsV3) }));
    const back = fromBinary(v3.AddPolicyRequestSchema, bytes).policy;
    expect(back?.statements.map((s) => [s.conditions?.neighborSet?.type, s.conditions?.neighborSet?.name, s.conditions?.extCommunitySet?.type, s.conditions?.extCommunitySet?.name, s.actions?.routeAction])).toEqual([
      [v3.MatchSet_Type.ANY, "kvrf-0123abcd-peer-0", 0, "kvrf-0123abcd-foreign-0", 2],
      [0, "kvrf-0123abcd-peer-0", 0, "kvrf-0123abcd-rt-0", 1],
      [0, "kvrf-0123abcd-peer-0", undefined, undefined, 2],
    ]);
  });

  it("defined sets: NEIGHBOR 1, EXT_COMMUNITY 5", () => {
    expect(definedSetTo({ type: "neighbor", name: "p", list: [] }, policyEnumsV3).definedType).toBe(1);
    const e = fromBinary(v3.DefinedSetSchema, toBinary(v3.DefinedSetSchema, create(v3.DefinedSetSchema, definedSetTo({ type: "ext-community", name: "r", list: ["rt:^65000:10$"] }, policyEnumsV3))));
    expect([e.definedType, e.list]).toEqual([v3.DefinedType.EXT_COMMUNITY, ["rt:^65000:10$"]]);
  });

  it("the global assignment: IMPORT 1 / EXPORT 2, NONE 0 as the default read back as none", () => {
    const a = assignmentTo("import", { policies: ["kvrf-x-import"], defaultAction: "reject" }, policyEnumsV3);
    const wire = fromBinary(v3.PolicyAssignmentSchema, toBinary(v3.PolicyAssignmentSchema, create(v3.PolicyAssignmentSchema, a)));
    expect([wire.direction, wire.defaultAction]).toEqual([v3.PolicyDirection.IMPORT, v3.RouteAction.REJECT]);
    expect(assignmentFrom(wire, policyEnumsV3)).toEqual({ policies: ["kvrf-x-import"], defaultAction: "reject" });
    expect(assignmentFrom(create(v3.PolicyAssignmentSchema, { defaultAction: v3.RouteAction.NONE }), policyEnumsV3).defaultAction).toBe("none");
  });

  it("soft reset directions IN 0, OUT 1, BOTH 2", () => {
    expect(policyEnumsV3.resetDirection).toEqual({ in: 0, out: 1, both: 2 });
  });
});
