import { v1 } from "@authzed/authzed-node";
import { describe, expect, it } from "vitest";
import { EngineError, type CheckItem } from "../../src/engine/engine.js";
import { CallAbortedError } from "../../src/call-signal.js";
import { BULK_SLICE, BULK_SLICES_IN_FLIGHT, SpiceDbEngine, type SpiceDbCalls } from "../../src/engine/spicedb-engine.js";

/**
 * How SpiceDbEngine sends a large bulk check (issue 8: no engine call may
 * block the event loop for long): in slices of BULK_SLICE, the first at the
 * consistency asked for and every other at exactly the first one's snapshot,
 * so that the answer is still one snapshot's.
 */
describe("SpiceDbEngine.checkBulk in slices", () => {
  const items = (n: number): CheckItem[] =>
    Array.from({ length: n }, (_, i) => ({ resource: { type: "dashboard", id: `d${i}` }, permission: "view", subject: { type: "user", id: "carol" } }));

  /** Fake SpiceDB: allows even-numbered dashboards, answers each request at its own revision, records the requests. */
  function recordingEngine(gate?: Promise<void>) {
    const requests: v1.CheckBulkPermissionsRequest[] = [];
    const calls = {
      checkBulkPermissions: async (request: v1.CheckBulkPermissionsRequest) => {
        requests.push(request);
        if (gate) await gate;
        const revision = `rev-${requests.length}`;
        return v1.CheckBulkPermissionsResponse.create({
          checkedAt: { token: revision },
          pairs: request.items.map((item) => ({
            request: item,
            response: {
              oneofKind: "item" as const,
              item: {
                permissionship:
                  Number(item.resource?.objectId.slice(1)) % 2 === 0
                    ? v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION
                    : v1.CheckPermissionResponse_Permissionship.NO_PERMISSION,
              },
            },
          })),
        });
      },
    } as Partial<SpiceDbCalls> as SpiceDbCalls;
    const engine = new SpiceDbEngine({ kind: "fake", calls, maxUpdatesPerWrite: 1000, close: async () => {} });
    return { engine, requests };
  }

  it("asks the first slice at the consistency given and the others at exactly its snapshot, and answers in request order", async () => {
    const { engine, requests } = recordingEngine();
    const n = BULK_SLICE * 3 + 7;
    const result = await engine.checkBulk(items(n), { kind: "fully_consistent" });
    expect(requests.map((r) => r.items.length)).toEqual([BULK_SLICE, BULK_SLICE, BULK_SLICE, 7]);
    expect(requests[0]!.consistency?.requirement).toEqual({ oneofKind: "fullyConsistent", fullyConsistent: true });
    for (const later of requests.slice(1)) {
      expect(later.consistency?.requirement).toEqual({ oneofKind: "atExactSnapshot", atExactSnapshot: { token: "rev-1" } });
    }
    expect(requests.flatMap((r) => r.items.map((i) => i.resource?.objectId))).toEqual(items(n).map((i) => i.resource.id));
    expect(result.results.map((r) => r.allowed)).toEqual(items(n).map((_, i) => i % 2 === 0));
    expect(result.token).toBe("rev-1");
  });

  it("at an exact snapshot, sends every slice at once, each at that snapshot", async () => {
    let open!: () => void;
    const { engine, requests } = recordingEngine(new Promise<void>((resolve) => (open = resolve)));
    const answer = engine.checkBulk(items(BULK_SLICE * 2 + 1), { kind: "at_exact_snapshot", token: "pinned" });
    for (let i = 0; i < 10 && requests.length < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(requests.map((r) => r.items.length), "sent before any answered").toEqual([BULK_SLICE, BULK_SLICE, 1]);
    open();
    const result = await answer;
    for (const r of requests) expect(r.consistency?.requirement).toEqual({ oneofKind: "atExactSnapshot", atExactSnapshot: { token: "pinned" } });
    expect(result.results.map((r) => r.allowed)).toEqual(items(BULK_SLICE * 2 + 1).map((_, i) => i % 2 === 0));
  });

  it("fails the whole call when one slice fails, and leaves no rejection unhandled", async () => {
    const requests: number[] = [];
    const calls = {
      checkBulkPermissions: async (request: v1.CheckBulkPermissionsRequest) => {
        requests.push(request.items.length);
        if (requests.length === 1) throw new EngineError("unavailable", "SpiceDB went away");
        return v1.CheckBulkPermissionsResponse.create({ checkedAt: { token: "r" }, pairs: [] });
      },
    } as Partial<SpiceDbCalls> as SpiceDbCalls;
    const engine = new SpiceDbEngine({ kind: "fake", calls, maxUpdatesPerWrite: 1000, close: async () => {} });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      await expect(engine.checkBulk(items(BULK_SLICE * 3), { kind: "at_exact_snapshot", token: "pinned" })).rejects.toThrow(/went away/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("sends nothing more once the call that asked has ended, and rejects with its reason", async () => {
    const { engine, requests } = recordingEngine();
    const call = new AbortController();
    const asked = engine.checkBulk(items(BULK_SLICE * 20), { kind: "at_exact_snapshot", token: "pinned" }, call.signal);
    while (requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
    call.abort(new CallAbortedError("cancelled"));
    await expect(asked).rejects.toBeInstanceOf(CallAbortedError);
    expect(requests.length, "slices sent before the call ended").toBeLessThanOrEqual(BULK_SLICES_IN_FLIGHT * 2);
    expect(requests.length).toBeGreaterThan(0);
  });

  it("sends a bulk check of at most one slice as one request", async () => {
    const { engine, requests } = recordingEngine();
    const result = await engine.checkBulk(items(BULK_SLICE), { kind: "at_exact_snapshot", token: "given" });
    expect(requests).toHaveLength(1);
    expect(requests[0]!.consistency?.requirement).toEqual({ oneofKind: "atExactSnapshot", atExactSnapshot: { token: "given" } });
    expect(result.results).toHaveLength(BULK_SLICE);
  });
});
