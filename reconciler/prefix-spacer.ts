// Spaces out gobgpd 4.8 path changes of one IP prefix made in different VRFs.
//
// gobgpd 4.8 keys the updates it packs for a peer by the path's IP prefix without the RD
// (Path.OriginInfo().nlriString is not updated by Vrf.ToGlobalPath, and CreateUpdateMsgFromPaths
// keeps the last action per key in one packing pass). Two VPCs announcing the same prefix close
// together can land in one pass and one of them is silently never sent. Changes of a prefix are
// therefore run one at a time, and a change follows one made for another VRF only after `gapMs`,
// long enough for gobgpd to have sent the previous one.
export class PrefixSpacer {
  private readonly slots = new Map<string, { tail: Promise<void>; vrf: string; at: number }>();

  constructor(
    private readonly gapMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async run<T>(prefix: string, vrf: string, op: () => Promise<T>): Promise<T> {
    const prev = this.slots.get(prefix);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const slot = { tail: (prev?.tail ?? Promise.resolve()).then(() => mine), vrf, at: 0 };
    this.slots.set(prefix, slot);
    await (prev?.tail ?? Promise.resolve());
    try {
      if (prev !== undefined && prev.vrf !== vrf) {
        const wait = prev.at + this.gapMs - this.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      return await op();
    } finally {
      slot.at = this.now();
      release();
      // Forget a prefix once nothing waits on it and its gap is over.
      setTimeout(() => {
        if (this.slots.get(prefix) === slot) this.slots.delete(prefix);
      }, this.gapMs).unref();
    }
  }
}
