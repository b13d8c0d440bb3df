// Typed client for the GoBGP v3 API (package apipb, service GobgpApi; upstream v3.10.0, Debian's gobgpd).
// Thin on purpose: the version-independent interface is built on top of this and ./v4.js.
// v3 packs NLRIs, attributes, RDs and RTs into google.protobuf.Any; `registry` resolves those
// type URLs (type.googleapis.com/apipb.<Message>) for anyPack/anyUnpack and JSON.
import { createRegistry } from "@bufbuild/protobuf";
import { createClient as createConnectClient, type Client, type Transport } from "@connectrpc/connect";
import { file_apipb_attribute } from "../../proto/gen/apipb/attribute_pb.js";
import { file_apipb_capability } from "../../proto/gen/apipb/capability_pb.js";
import { file_apipb_gobgp, GobgpApi } from "../../proto/gen/apipb/gobgp_pb.js";

export { GobgpApi };
export type GoBgpV3Client = Client<typeof GobgpApi>;

/** Every message of the v3 subset, for unpacking Any values. */
export const registry = createRegistry(file_apipb_gobgp, file_apipb_attribute, file_apipb_capability);

export function createClient(service: typeof GobgpApi, transport: Transport): GoBgpV3Client {
  return createConnectClient(service, transport);
}
