import { create } from "@bufbuild/protobuf";
import { StructSchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { findNul, holdsNul } from "../../src/api/validate.js";
import { ImportDataRequestSchema } from "../../src/gen/sharegraph/v1/admin_service_pb.js";
import { CheckBulkPermissionsRequestSchema } from "../../src/gen/sharegraph/v1/permission_service_pb.js";

/**
 * R42: a NUL character anywhere in a request is INVALID_ARGUMENT naming the
 * field. The interceptor first scans the message's plain values (cheap on a
 * 1,000-item bulk check) and names the field only when there is one.
 */
describe("R42: the NUL scan of a request", () => {
  const question = (subject: string) => ({ resource: { type: "dashboard", id: "d1" }, permission: "view", subject: { type: "user", id: subject } });

  it("finds U+0000 in a list item's nested message, names the field, and passes a clean request", () => {
    const clean = create(CheckBulkPermissionsRequestSchema, { items: Array.from({ length: 1000 }, (_, i) => question(`u${i}`)) });
    expect(holdsNul(clean)).toBe(false);
    expect(findNul(CheckBulkPermissionsRequestSchema, clean)).toBeUndefined();
    const dirty = create(CheckBulkPermissionsRequestSchema, { items: [question("alice"), question("bo\u0000b")] });
    expect(holdsNul(dirty)).toBe(true);
    expect(findNul(CheckBulkPermissionsRequestSchema, dirty)).toBe("items[1].subject.id");
  });

  it("looks inside oneof values and repeated strings, and skips 64-bit integers", () => {
    const header = (omitted: string[]) =>
      create(ImportDataRequestSchema, {
        firstRecord: 7n,
        records: [{ record: { case: "header", value: { format: "sharegraph-export", version: 1, migration: "0011", exportedAt: "now", omitted } } }],
      });
    expect(findNul(ImportDataRequestSchema, header(["group_closure"]))).toBeUndefined();
    expect(findNul(ImportDataRequestSchema, header(["ok", "x\u0000"]))).toBe("records[0].header.omitted[1]");
  });

  it("looks at map keys and values (google.protobuf.Struct), and not at bytes", () => {
    const struct = (fields: Record<string, string>) =>
      create(StructSchema, { fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { kind: { case: "stringValue" as const, value: v } }])) });
    expect(holdsNul(struct({ a: "b" }))).toBe(false);
    expect(findNul(StructSchema, struct({ a: "b\u0000" }))).toBe('fields["a"].string_value');
    expect(findNul(StructSchema, struct({ "a\u0000": "b" }))).toBe("fields (a key)");
    expect(holdsNul({ data: new Uint8Array([0, 0, 0]) })).toBe(false);
    expect(holdsNul(create(TimestampSchema, { seconds: 0n, nanos: 0 }))).toBe(false);
  });
});
