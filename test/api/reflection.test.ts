import { execFile } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import type { DescService, MessageInitShape } from "@bufbuild/protobuf";
import { createFileRegistry, create, fromBinary } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_timestamp,
} from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reflectionRoutes } from "../../src/api/reflection.js";
import * as v1 from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../src/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/health/v1/health_pb.js";
import { DirectoryService } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";

const exec = promisify(execFile);

// The sharegraph protos have no nested messages or extensions, so a small
// proto2 file built in code covers those, plus a well-known-type import:
//
//   syntax = "proto2";
//   package fixture.v1;
//   import "google/protobuf/timestamp.proto";
//   message Outer {
//     optional google.protobuf.Timestamp at = 1;
//     message Inner { optional string name = 1; }
//     extensions 100 to 199;
//   }
//   extend Outer { optional int32 tag = 100; }
//   service FixtureService { rpc Get(Outer.Inner) returns (Outer); }
const { OPTIONAL } = FieldDescriptorProto_Label;
const { MESSAGE, STRING, INT32 } = FieldDescriptorProto_Type;
const fixtureFile = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "fixture/v1/fixture.proto",
    package: "fixture.v1",
    syntax: "proto2",
    dependency: ["google/protobuf/timestamp.proto"],
    messageType: [
      {
        name: "Outer",
        field: [{ name: "at", number: 1, label: OPTIONAL, type: MESSAGE, typeName: ".google.protobuf.Timestamp" }],
        nestedType: [{ name: "Inner", field: [{ name: "name", number: 1, label: OPTIONAL, type: STRING }] }],
        extensionRange: [{ start: 100, end: 200 }],
      },
    ],
    extension: [{ name: "tag", number: 100, label: OPTIONAL, type: INT32, extendee: ".fixture.v1.Outer" }],
    service: [
      { name: "FixtureService", method: [{ name: "Get", inputType: ".fixture.v1.Outer.Inner", outputType: ".fixture.v1.Outer" }] },
    ],
  }),
  (name) => (name === file_google_protobuf_timestamp.proto.name ? file_google_protobuf_timestamp : undefined),
);
const FixtureService = fixtureFile.getService("fixture.v1.FixtureService") as DescService;

function routes(router: ConnectRouter) {
  router.service(PermissionService, {
    checkPermission: (req) => ({ allowed: req.resource?.type === "dashboard", consistencyToken: `tok-${req.resource?.id}` }),
  });
  router.service(DirectoryService, {
    getUser: (req) => ({ user: { id: req.userId, email: `${req.userId}@example.com` } }),
  });
  router.service(Health, { check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }) });
  router.service(FixtureService, {});
  reflectionRoutes([PermissionService, DirectoryService, Health, FixtureService])(router);
}

let server: http2.Http2Server;
const sessions = new Set<http2.ServerHttp2Session>();
let baseUrl: string;

beforeAll(async () => {
  server = http2.createServer(connectNodeAdapter({ routes }));
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  sessions.forEach((s) => s.destroy());
  await new Promise((resolve) => server.close(resolve));
});

describe("buf curl over server reflection", () => {
  async function bufCurl(...args: string[]): Promise<string> {
    const { stdout } = await exec("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", "--protocol", "grpc", ...args]);
    return stdout;
  }

  it("lists services (v1)", async () => {
    const lines = (await bufCurl("--list-services", baseUrl)).trim().split("\n");
    expect(lines).toEqual(
      expect.arrayContaining([
        "sharegraph.v1.PermissionService",
        "sharegraph.v1.DirectoryService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]),
    );
  });

  it("lists services over v1alpha", async () => {
    const out = await bufCurl("--reflect-protocol", "grpc-v1alpha", "--list-services", baseUrl);
    expect(out).toContain("sharegraph.v1.PermissionService\n");
    expect(out).toContain("grpc.health.v1.Health\n");
  });

  it("lists the methods of every service", async () => {
    const lines = (await bufCurl("--list-methods", baseUrl)).trim().split("\n");
    expect(lines).toEqual(
      expect.arrayContaining([
        "sharegraph.v1.PermissionService/CheckPermission",
        "sharegraph.v1.PermissionService/LookupResources",
        "sharegraph.v1.DirectoryService/GetUser",
        "grpc.health.v1.Health/Check",
        "fixture.v1.FixtureService/Get",
      ]),
    );
  });

  it("calls a method with the schema taken from reflection", async () => {
    const data = { resource: { type: "dashboard", id: "q3" }, permission: "view", subject: { type: "user", id: "alice" } };
    const out = await bufCurl("-d", JSON.stringify(data), `${baseUrl}/sharegraph.v1.PermissionService/CheckPermission`);
    expect(JSON.parse(out)).toEqual({ allowed: true, consistencyToken: "tok-q3" });
  });

  it("calls methods over v1alpha reflection too", async () => {
    const user = await bufCurl(
      "--reflect-protocol",
      "grpc-v1alpha",
      "-d",
      '{"userId":"bob"}',
      `${baseUrl}/sharegraph.v1.DirectoryService/GetUser`,
    );
    expect(JSON.parse(user)).toEqual({ user: { id: "bob", email: "bob@example.com" } });
    const health = await bufCurl("--reflect-protocol", "grpc-v1alpha", "-d", "{}", `${baseUrl}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(health)).toEqual({ status: "SERVING" });
  });
});

describe("ServerReflectionInfo with a connect client", () => {
  type Request = NonNullable<MessageInitShape<typeof v1.ServerReflectionRequestSchema>["messageRequest"]>;

  /** Sends the requests on one stream, as clients do, and collects the answers. */
  async function reflect(...requests: Request[]): Promise<v1.ServerReflectionResponse[]> {
    const client = createClient(v1.ServerReflection, createGrpcTransport({ baseUrl }));
    async function* input() {
      for (const messageRequest of requests) yield { host: "localhost", messageRequest };
    }
    const responses: v1.ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(input())) responses.push(res);
    return responses;
  }

  async function reflectOne(request: Request): Promise<v1.ServerReflectionResponse> {
    const [response] = await reflect(request);
    if (response === undefined) throw new Error("no response");
    return response;
  }

  function files(res: v1.ServerReflectionResponse) {
    if (res.messageResponse.case !== "fileDescriptorResponse") {
      throw new Error(`expected files, got ${JSON.stringify(res.messageResponse.value)}`);
    }
    return res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
  }
  const fileNames = (res: v1.ServerReflectionResponse) => files(res).map((f) => f.name);

  function errorCode(res: v1.ServerReflectionResponse) {
    return res.messageResponse.case === "errorResponse" ? res.messageResponse.value.errorCode : undefined;
  }

  it("lists the given services and the reflection services", async () => {
    const res = await reflectOne({ case: "listServices", value: "" });
    expect(res.validHost).toBe("localhost");
    expect(res.originalRequest?.messageRequest).toEqual({ case: "listServices", value: "" });
    expect(res.messageResponse.case).toBe("listServicesResponse");
    const names = res.messageResponse.case === "listServicesResponse" ? res.messageResponse.value.service : [];
    expect(names.map((s) => s.name).sort()).toEqual([
      "fixture.v1.FixtureService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "sharegraph.v1.DirectoryService",
      "sharegraph.v1.PermissionService",
    ]);
  });

  it("finds the file of a nested message, with its imports", async () => {
    const res = await reflectOne({ case: "fileContainingSymbol", value: "fixture.v1.Outer.Inner" });
    const [fixture, ...imports] = files(res);
    expect(fixture?.name).toBe("fixture/v1/fixture.proto");
    expect(fixture?.messageType[0]?.nestedType[0]?.name).toBe("Inner");
    expect(fixture?.dependency).toEqual(["google/protobuf/timestamp.proto"]);
    expect(imports.map((f) => f.name)).toEqual(["google/protobuf/timestamp.proto"]);
  });

  it("finds the file of a method, a field, an enum, a nested enum and an enum value", async () => {
    const permissionFiles = ["sharegraph/v1/permission_service.proto", "sharegraph/v1/common.proto"];
    const method = await reflectOne({ case: "fileContainingSymbol", value: "sharegraph.v1.PermissionService.CheckPermission" });
    expect(fileNames(method)).toEqual(permissionFiles);
    const [permission] = files(method);
    expect(permission?.syntax).toBe("proto3");
    expect(permission?.service[0]?.method.map((m) => m.name)).toContain("ExplainPermission");

    const field = await reflectOne({ case: "fileContainingSymbol", value: "sharegraph.v1.CheckPermissionRequest.resource" });
    expect(fileNames(field)).toEqual(permissionFiles);
    const role = await reflectOne({ case: "fileContainingSymbol", value: "sharegraph.v1.Role" });
    expect(fileNames(role)).toEqual(["sharegraph/v1/common.proto"]);
    const roleValue = await reflectOne({ case: "fileContainingSymbol", value: "sharegraph.v1.ROLE_VIEWER" });
    expect(fileNames(roleValue)).toEqual(["sharegraph/v1/common.proto"]);
    const servingStatus = await reflectOne({
      case: "fileContainingSymbol",
      value: "grpc.health.v1.HealthCheckResponse.ServingStatus",
    });
    expect(fileNames(servingStatus)).toEqual(["health/v1/health.proto"]);
  });

  it("finds a file by name", async () => {
    const res = await reflectOne({ case: "fileByFilename", value: "sharegraph/v1/directory_service.proto" });
    expect(fileNames(res)).toEqual(["sharegraph/v1/directory_service.proto", "sharegraph/v1/common.proto"]);
    const reflection = await reflectOne({ case: "fileByFilename", value: "grpc/reflection/v1/reflection.proto" });
    expect(fileNames(reflection)).toEqual(["grpc/reflection/v1/reflection.proto"]);
  });

  it("sends an import once per stream, but always the requested file", async () => {
    const responses = await reflect(
      { case: "fileContainingSymbol", value: "sharegraph.v1.PermissionService" },
      { case: "fileContainingSymbol", value: "sharegraph.v1.DirectoryService" },
      { case: "fileByFilename", value: "sharegraph/v1/common.proto" },
    );
    expect(responses.map(fileNames)).toEqual([
      ["sharegraph/v1/permission_service.proto", "sharegraph/v1/common.proto"],
      ["sharegraph/v1/directory_service.proto"],
      ["sharegraph/v1/common.proto"],
    ]);
  });

  it("answers unknown symbols and files with NOT_FOUND and keeps the stream open", async () => {
    const responses = await reflect(
      { case: "fileContainingSymbol", value: "sharegraph.v1.NoSuchThing" },
      { case: "fileByFilename", value: "nope.proto" },
      { case: "listServices", value: "" },
    );
    expect(responses.map(errorCode)).toEqual([5, 5, undefined]);
    expect(responses[0]?.messageResponse.value).toMatchObject({ errorMessage: expect.stringContaining("NoSuchThing") });
    expect(responses[2]?.messageResponse.case).toBe("listServicesResponse");
  });

  it("resolves extensions", async () => {
    const responses = await reflect(
      { case: "fileContainingExtension", value: { containingType: "fixture.v1.Outer", extensionNumber: 100 } },
      { case: "fileContainingExtension", value: { containingType: "sharegraph.v1.ObjectRef", extensionNumber: 100 } },
      { case: "allExtensionNumbersOfType", value: "fixture.v1.Outer" },
      { case: "allExtensionNumbersOfType", value: "sharegraph.v1.ObjectRef" },
      { case: "allExtensionNumbersOfType", value: "sharegraph.v1.Nope" },
    );
    const [found, missing, numbers, none, unknown] = responses;
    expect(fileNames(found as v1.ServerReflectionResponse)[0]).toBe("fixture/v1/fixture.proto");
    expect(errorCode(missing as v1.ServerReflectionResponse)).toBe(5);
    expect(numbers?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "fixture.v1.Outer", extensionNumber: [100] },
    });
    expect(none?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "sharegraph.v1.ObjectRef", extensionNumber: [] },
    });
    expect(errorCode(unknown as v1.ServerReflectionResponse)).toBe(5);
  });

  it("serves v1alpha with the same answers", async () => {
    const client = createClient(v1alpha.ServerReflection, createGrpcTransport({ baseUrl }));
    async function* input() {
      yield { messageRequest: { case: "listServices" as const, value: "" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "sharegraph.v1.Consistency" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "sharegraph.v1.Missing" } };
    }
    const responses: v1alpha.ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(input())) responses.push(res);

    expect(responses.map((r) => r.messageResponse.case)).toEqual([
      "listServicesResponse",
      "fileDescriptorResponse",
      "errorResponse",
    ]);
    const [list, file, error] = responses;
    expect(list?.messageResponse.value).toMatchObject({
      service: expect.arrayContaining([{ $typeName: "grpc.reflection.v1alpha.ServiceResponse", name: "grpc.health.v1.Health" }]),
    });
    const bytes = file?.messageResponse.case === "fileDescriptorResponse" ? file.messageResponse.value.fileDescriptorProto : [];
    expect(bytes.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)).toEqual(["sharegraph/v1/common.proto"]);
    expect(error?.messageResponse.value).toMatchObject({ errorCode: 5 });
  });
});
