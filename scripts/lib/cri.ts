// The CRI RuntimeService's Status call, verbose, straight over node:http2 on containerd's socket:
// its `info` map says which CNI network configuration containerd has loaded (key "cniconfig"),
// which is how scripts/bench-cluster.ts knows containerd switched to a conflist it wrote, before it
// creates any pod (no crictl in the test environment, and no generated CRI client in the repo).
// Only what that needs: one unary call, an uncompressed length-prefixed reply, and a protobuf
// decoder for StatusResponse's map<string, string> info = 2.
import http2 from "node:http2";
import net from "node:net";

/** A varint at `pos`: [value, next position]. */
function varint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error("protobuf: truncated varint");
    const b = buf[pos++] ?? 0;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, pos];
    shift += 7;
    if (shift > 63) throw new Error("protobuf: varint too long");
  }
}

/** The fields of one message as [field number, wire type, value] (value: number, or bytes for length-delimited). */
export function protoFields(buf: Uint8Array): [number, number, number | Uint8Array][] {
  const out: [number, number, number | Uint8Array][] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p] = varint(buf, pos);
    pos = p;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const [v, q] = varint(buf, pos);
      out.push([field, wire, v]);
      pos = q;
    } else if (wire === 2) {
      const [len, q] = varint(buf, pos);
      if (q + len > buf.length) throw new Error("protobuf: truncated field");
      out.push([field, wire, buf.subarray(q, q + len)]);
      pos = q + len;
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (pos + n > buf.length) throw new Error("protobuf: truncated field");
      out.push([field, wire, 0]);
      pos += n;
    } else {
      throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
  }
  return out;
}

/** A map<string, string> field of a message (entries: key = 1, value = 2). */
export function protoStringMap(message: Uint8Array, field: number): Map<string, string> {
  const text = new TextDecoder();
  const map = new Map<string, string>();
  for (const [f, wire, v] of protoFields(message)) {
    if (f !== field || wire !== 2 || typeof v === "number") continue;
    let key = "";
    let value = "";
    for (const [ef, ew, ev] of protoFields(v)) {
      if (ew !== 2 || typeof ev === "number") continue;
      if (ef === 1) key = text.decode(ev);
      if (ef === 2) value = text.decode(ev);
    }
    map.set(key, value);
  }
  return map;
}

/** The messages of a gRPC response body (uncompressed length-prefixed frames). */
export function grpcFrames(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos + 5 <= body.length) {
    if (body[pos] !== 0) throw new Error("gRPC: compressed message");
    const len = ((body[pos + 1] ?? 0) * 2 ** 24) + ((body[pos + 2] ?? 0) << 16) + ((body[pos + 3] ?? 0) << 8) + (body[pos + 4] ?? 0);
    if (pos + 5 + len > body.length) throw new Error("gRPC: truncated message");
    out.push(body.subarray(pos + 5, pos + 5 + len));
    pos += 5 + len;
  }
  return out;
}

/** runtime.v1.RuntimeService/Status with verbose = true: the runtime's info map. */
export function criStatusInfo(socket: string, timeoutMs = 10_000): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(socket) });
    const fail = (err: Error): void => {
      session.destroy();
      reject(err);
    };
    session.on("error", fail);
    const timer = setTimeout(() => fail(new Error(`CRI Status on ${socket}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const req = session.request({ ":method": "POST", ":path": "/runtime.v1.RuntimeService/Status", "content-type": "application/grpc", te: "trailers" });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = "";
    const headers = (h: http2.IncomingHttpHeaders): void => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    req.on("response", headers);
    req.on("trailers", headers);
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", fail);
    req.on("end", () => {
      clearTimeout(timer);
      session.close();
      if (status !== "0") return reject(new Error(`CRI Status on ${socket}: grpc-status ${status ?? "missing"} ${message}`));
      const [msg] = grpcFrames(Buffer.concat(chunks));
      resolve(msg === undefined ? new Map() : protoStringMap(msg, 2));
    });
    // StatusRequest { bool verbose = 1 } = true
    req.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
  });
}

/** The names of the CNI networks containerd has loaded (from the verbose Status info's "cniconfig"). */
export function loadedCniNetworks(info: ReadonlyMap<string, string>): string[] {
  const raw = info.get("cniconfig");
  if (raw === undefined) return [];
  const cfg = JSON.parse(raw) as { Networks?: { Config?: { Name?: string } }[] | null };
  return (cfg.Networks ?? []).map((n) => n.Config?.Name ?? "").filter((n) => n !== "");
}
