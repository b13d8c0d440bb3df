// Speaker on gobgpd 3.x (package apipb, service GobgpApi; Debian's 3.10): the wire for adapter.ts;
// wire details live in convert-v3.ts. Unlike 4.8.0, 3.10 answers path calls before StartBgp with
// "bgp server hasn't started yet" and can StopBgp and start again. connect.ts imports this module
// only for a 3.x gobgpd.
import { createClient } from "@connectrpc/connect";
import * as apipb from "../../proto/gen/apipb/gobgp_pb.js";
import { GoBgpSpeaker, type MessagesOf } from "./adapter.js";
import type { Channel } from "./channel.js";
import {
  eventFromV3,
  globalTable,
  localPathToV3,
  policyEnumsV3,
  ribPathsFromV3,
  vrfFromV3,
  vrfPathsFromV3,
  vrfTable,
  vrfToV3,
  watchRequestV3,
} from "./convert-v3.js";

export class GoBgpV3Speaker extends GoBgpSpeaker<MessagesOf<typeof apipb>> {
  constructor(channel: Channel) {
    super(channel, {
      api: "v3",
      client: createClient(apipb.GobgpApi, channel.transport),
      globalTable,
      vrfTable,
      policy: policyEnumsV3,
      watchRequest: watchRequestV3,
      vrfTo: vrfToV3,
      vrfFrom: vrfFromV3,
      vrfPathsFrom: vrfPathsFromV3,
      ribPathsFrom: ribPathsFromV3,
      localPathTo: localPathToV3,
      eventFrom: eventFromV3,
    });
  }
}
