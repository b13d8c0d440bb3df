// The connection to gobgpd and the knowledge of whether gobgpd still holds what we gave it.
//
// gobgpd keeps no state across a restart, so every (re)connection starts a new Session: the
// controllers treat a new session as "gobgpd knows nothing we did not see it say" and replay.
// A restart is noticed three ways, whichever comes first: the watch stream breaks (the process
// died), a periodic GetBgp probe fails or reports BGP not started while we had started it (a quick
// restart between probes that the watch missed), or any call fails with "not-started".
import { monotonicMs } from "../../shared/clock.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { SpeakerError, type Speaker, type SpeakerEvent, type Vrf } from "./speaker.js";
import { Backoff } from "../backoff.js";
import { RibView, type RibChange } from "./rib.js";

export interface Session {
  /** Increases with every connection: work started under an older session is discarded. */
  readonly generation: number;
  readonly speaker: Speaker;
  /** BGP is started (GetBgp answered with a global config). */
  started: boolean;
  /** The speaker controller has applied the node's BGPInstance in this session (VRF work may start). */
  settled: boolean;
  /** When we started BGP in this session (fresh RIB: removals of kernel routes are held until then + hold). */
  freshSince?: number;
  /** gobgpd's VRFs as of the session start, kept current by our own writes. */
  readonly vrfs: Map<string, Vrf>;
  /** gobgpd's global VPN tables (best paths, our own paths), kept current by the watch (rib.ts). */
  readonly rib: RibView;
}

export interface SpeakerLinkOptions {
  connect: () => Promise<Speaker>;
  probeIntervalMs: number;
  backoff: { baseMs: number; maxMs: number };
  log: Logger;
}

export interface SpeakerLinkHandlers {
  /** A new session is ready (also after a restart). */
  up(session: Session): void;
  down(): void;
  /** BGP state was lost inside a session (probe or a call said "not started"). */
  lost(session: Session): void;
  /** A peer's session state (from the watch). */
  event(session: Session, e: Extract<SpeakerEvent, { kind: "peer" }>): void;
  /** Best paths changed in the session's RIB view. */
  rib(session: Session, changes: readonly RibChange[]): void;
  /** The session's RIB view was (re)read and is complete: every VRF's routes may be recomputed. */
  ribSynced(session: Session): void;
}

export class SpeakerLink {
  private session: Session | undefined;
  private generation = 0;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private handlers: SpeakerLinkHandlers | undefined;
  private sessionAbort: AbortController | undefined;
  private downSince = monotonicMs();

  constructor(private readonly opts: SpeakerLinkOptions) {}

  current(): Session | undefined {
    return this.session;
  }

  /** How long there has been no session (0 while there is one). */
  downForMs(now = monotonicMs()): number {
    return this.session === undefined ? now - this.downSince : 0;
  }

  start(handlers: SpeakerLinkHandlers): void {
    this.handlers = handlers;
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.sessionAbort?.abort();
    await this.loop;
  }

  /**
   * Reads gobgpd's global VPN tables again (the informers' periodic resync): the RIB view stays in
   * use meanwhile; whatever drifted is corrected and every VRF is looked at again (ribSynced).
   */
  refreshRib(): void {
    const s = this.session;
    const signal = this.sessionAbort?.signal;
    if (s === undefined || signal === undefined || signal.aborted || !s.rib.synced) return;
    void this.readRib(s, signal);
  }

  /** Loads gobgpd's VRFs into the session (after StartBgp, or when a write found our view stale). */
  async loadVrfs(s: Session): Promise<void> {
    const vrfs = await s.speaker.listVrfs();
    s.vrfs.clear();
    for (const v of vrfs) s.vrfs.set(v.name, v);
  }

  /**
   * Reports a failed call. "not-started" means gobgpd lost BGP (restart or StopBgp from outside);
   * "unavailable" means the connection is gone: end the session now rather than at the next probe.
   */
  report(s: Session, err: unknown): void {
    if (!(err instanceof SpeakerError) || s !== this.session) return;
    if (err.kind === "not-started" && s.started) {
      s.started = false;
      s.vrfs.clear();
      s.rib.reset();
      this.handlers?.lost(s);
    } else if (err.kind === "unavailable") {
      this.sessionAbort?.abort();
    }
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(this.opts.backoff);
    const log = this.opts.log;
    while (!this.abort.signal.aborted) {
      let speaker: Speaker;
      try {
        speaker = await this.opts.connect();
      } catch (err) {
        const wait = backoff.next("connect");
        if (backoff.failuresOf("connect") === 1 || backoff.failuresOf("connect") % 10 === 0) {
          log.warn({ err: String(err), retryMs: wait }, "gobgpd not reachable");
        }
        await sleep(wait, undefined, { signal: this.abort.signal }).catch(() => undefined);
        continue;
      }
      const s: Session = { generation: ++this.generation, speaker, started: false, settled: false, vrfs: new Map(), rib: new RibView() };
      const sessionAbort = new AbortController();
      this.sessionAbort = sessionAbort;
      const onStop = (): void => sessionAbort.abort();
      this.abort.signal.addEventListener("abort", onStop, { once: true });
      try {
        const global = await speaker.getGlobal();
        s.started = global !== undefined;
        if (s.started) await this.loadVrfs(s);
        backoff.forget("connect");
        this.session = s;
        log.info({ api: speaker.api, generation: s.generation, bgpStarted: s.started, vrfs: s.vrfs.size }, "connected to gobgpd");
        this.handlers?.up(s);
        await Promise.race([this.watch(s, sessionAbort.signal), this.probe(s, sessionAbort.signal)]);
      } catch (err) {
        log.warn({ err: String(err) }, "gobgpd session failed");
      } finally {
        sessionAbort.abort();
        this.abort.signal.removeEventListener("abort", onStop);
        const wasUp = this.session === s;
        this.session = undefined;
        if (wasUp) this.downSince = monotonicMs();
        speaker.close();
        if (wasUp) {
          log.warn({ generation: s.generation }, "lost gobgpd; will reconnect and replay");
          this.handlers?.down();
        }
      }
      if (!this.abort.signal.aborted) {
        await sleep(backoff.next("connect"), undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  /**
   * Returns when the session is over (stream broken or aborted). Feeds the session's RIB view:
   * once gobgpd says the watch is registered, the table is read while later changes wait.
   */
  private async watch(s: Session, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        for await (const e of s.speaker.watch(signal)) {
          if (e.kind === "watching") void this.readRib(s, signal);
          else if (e.kind === "rib") {
            const changes = s.rib.apply(e.paths);
            if (changes !== undefined && changes.length > 0) this.handlers?.rib(s, changes);
          } else this.handlers?.event(s, e);
        }
        s.rib.invalidate();
        if (!signal.aborted) return; // the stream ended by itself: gobgpd went away
      } catch (err) {
        s.rib.invalidate();
        if (signal.aborted) return;
        if (err instanceof SpeakerError && err.kind !== "unavailable") {
          // e.g. not started yet: gobgpd is there, the watch comes back once BGP runs.
          await sleep(1000, undefined, { signal }).catch(() => undefined);
          continue;
        }
        this.opts.log.info({ err: String(err) }, "gobgpd watch ended");
        return;
      }
    }
  }

  /** Reads gobgpd's global VPN tables into the session's RIB view (retried until it works). */
  private async readRib(s: Session, signal: AbortSignal): Promise<void> {
    const token = s.rib.beginRead();
    while (!signal.aborted) {
      const t0 = monotonicMs();
      try {
        // The VPN tables and the EVPN one (type-5 routes of VXLAN VPCs): the watch reports all three.
        const [v4, v6, evpn] = await Promise.all([s.speaker.listRib("ipv4"), s.speaker.listRib("ipv6"), s.speaker.listRib("evpn")]);
        if (s.rib.finishRead(token, [...v4, ...v6, ...evpn])) {
          this.opts.log.info({ generation: s.generation, destinations: s.rib.size, ms: monotonicMs() - t0 }, "read gobgpd's VPN and EVPN tables");
          this.handlers?.ribSynced(s);
        }
        return;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof SpeakerError && err.kind === "unavailable") {
          this.report(s, err);
          return;
        }
        this.opts.log.warn({ err: String(err) }, "cannot read gobgpd's VPN tables; retrying");
        await sleep(1000, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  private async probe(s: Session, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.opts.probeIntervalMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        const global = await s.speaker.getGlobal();
        if (global === undefined && s.started) {
          this.opts.log.warn({ generation: s.generation }, "gobgpd lost its BGP state; replaying");
          this.report(s, new SpeakerError("not-started", "probe: bgp not started"));
        }
      } catch (err) {
        if (err instanceof SpeakerError && err.kind !== "unavailable") continue;
        this.opts.log.info({ err: String(err) }, "gobgpd probe failed");
        return;
      }
    }
  }
}
