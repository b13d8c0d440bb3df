// Speaker on gobgpd 4.x (package api, service GoBgpService): the wire for adapter.ts, whose call
// sequence guards against gobgpd 4.8.0 behaviours; wire details live in convert-v4.ts.
//  - AddPath/DeletePath with a vrf_id before StartBgp dereference a nil RIB and crash gobgpd
//    (panic in TableManager.GetVrf), so kvrf never sends them: it originates its paths in VPN
//    form in the global table, where gobgpd checks that BGP runs and answers "not started";
//  - StopBgp ends the server loop for good: afterwards every call answers "server stopped"
//    (classified "unavailable") until gobgpd is restarted, and StopBgp on a server that was never
//    started does the same, so stopBgp() does nothing unless BGP is running.
import { createClient } from "@connectrpc/connect";
import * as api from "../../proto/gen/api/gobgp_pb.js";
import { GoBgpSpeaker, type MessagesOf } from "./adapter.js";
import type { Channel } from "./channel.js";
import {
  eventFromV4,
  globalTable,
  localPathToV4,
  policyEnumsV4,
  ribPathsFromV4,
  vrfFromV4,
  vrfPathsFromV4,
  vrfTable,
  vrfToV4,
  watchRequestV4,
} from "./convert-v4.js";

export class GoBgpV4Speaker extends GoBgpSpeaker<MessagesOf<typeof api>> {
  constructor(channel: Channel) {
    super(channel, {
      api: "v4",
      client: createClient(api.GoBgpService, channel.transport),
      globalTable,
      vrfTable,
      policy: policyEnumsV4,
      watchRequest: watchRequestV4,
      vrfTo: vrfToV4,
      vrfFrom: vrfFromV4,
      vrfPathsFrom: vrfPathsFromV4,
      ribPathsFrom: ribPathsFromV4,
      localPathTo: localPathToV4,
      eventFrom: eventFromV4,
    });
  }
}
