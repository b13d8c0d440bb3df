import { describe, expect, it } from "vitest";
import { outage } from "./kubelet.js";

describe("outage: the longest run of unanswered probes", () => {
  it.each([
    ["none lost", [1, 2, 3, 4], 4, { longestOutageMs: 0, lostAtEnd: 0 }],
    ["one gap of three", [1, 2, 6, 7], 7, { longestOutageMs: 600, lostAtEnd: 0 }],
    ["the longer of two gaps", [1, 3, 4, 8], 8, { longestOutageMs: 600, lostAtEnd: 0 }],
    ["lost at the start", [4, 5], 5, { longestOutageMs: 600, lostAtEnd: 0 }],
    ["still lost at the end", [1, 2], 5, { longestOutageMs: 600, lostAtEnd: 3 }],
    ["nothing answered", [], 3, { longestOutageMs: 600, lostAtEnd: 3 }],
    ["nothing sent", [], 0, { longestOutageMs: 0, lostAtEnd: 0 }],
  ] as const)("%s", (_what, seqs, sent, want) => {
    expect(outage(seqs, sent, 200)).toEqual(want);
  });
});
