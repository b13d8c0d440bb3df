// Typed client for the GoBGP v4 API (package api, service GoBgpService; upstream v4.8.0).
// Thin on purpose: the version-independent interface is built on top of this and ./v3.js.
import { createClient as createConnectClient, type Client, type Transport } from "@connectrpc/connect";
import { GoBgpService } from "../../proto/gen/api/gobgp_pb.js";

export { GoBgpService };
export type GoBgpV4Client = Client<typeof GoBgpService>;

export function createClient(service: typeof GoBgpService, transport: Transport): GoBgpV4Client {
  return createConnectClient(service, transport);
}
