import { describe, expect, it } from "vitest";
import { outage } from "./kubelet.js";

describe("outage: the longest run of unanswered probes (200 ms apart; the last second's 5 may be in flight)", () => {
  it.each([
    ["none lost", [1, 2, 3, 4, 5, 6, 7, 8, 9], 9, { longestOutageMs: 0, lostAtEnd: 0 }],
    ["one gap of three", [1, 2, 6, 7, 8, 9, 10, 11, 12], 12, { longestOutageMs: 600, lostAtEnd: 0 }],
    ["the longer of two gaps", [1, 3, 4, 8, 9, 10, 11, 12, 13], 13, { longestOutageMs: 600, lostAtEnd: 0 }],
    ["lost at the start", [4, 5, 6, 7, 8, 9, 10], 10, { longestOutageMs: 600, lostAtEnd: 0 }],
    ["still lost at the end", [1, 2], 10, { longestOutageMs: 600, lostAtEnd: 3 }],
    ["the last second unanswered: in flight, not lost", [1, 2, 3, 4], 9, { longestOutageMs: 0, lostAtEnd: 0 }],
    ["nothing answered", [], 8, { longestOutageMs: 600, lostAtEnd: 3 }],
    ["nothing sent", [], 0, { longestOutageMs: 0, lostAtEnd: 0 }],
  ] as const)("%s", (_what, seqs, sent, want) => {
    expect(outage(seqs, sent, 200)).toEqual(want);
  });
});
