/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) for connect-node,
 * answered from the protobuf-es descriptors of the services we serve, so that
 * grpcurl, `buf curl` and Postman can discover the API without .proto files.
 *
 * Wiring:
 *
 *   connectNodeAdapter({
 *     routes(router) {
 *       router.service(PermissionService, permissionHandlers);
 *       router.service(Health, healthHandlers);
 *       reflectionRoutes([PermissionService, Health])(router);
 *     },
 *   });
 *
 * `reflectionRoutes(services)` can also be passed as `routes` directly when
 * nothing else is served.
 */
import type { DescExtension, DescFile, DescService } from "@bufbuild/protobuf";
import { toBinary } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * Registers grpc.reflection.v1.ServerReflection and its v1alpha twin,
 * describing `services` (and the reflection services themselves). Include
 * `Health` in `services` if it is served.
 */
export function reflectionRoutes(services: DescService[]): (router: ConnectRouter) => void {
  const index = new SchemaIndex([...services, v1.ServerReflection, v1alpha.ServerReflection]);
  return (router) => {
    // v1alpha is all that older clients (grpc_cli, older grpcurl) speak;
    // the two protos are wire-identical, so one implementation serves both.
    router.service(v1.ServerReflection, { serverReflectionInfo: (requests) => index.serve(requests) });
    router.service(v1alpha.ServerReflection, { serverReflectionInfo: (requests) => index.serve(requests) });
  };
}

/** What v1 and v1alpha requests have in common. */
interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

class SchemaIndex {
  private readonly serviceNames: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly encoded = new Map<string, Uint8Array>();
  /** Fully-qualified name of every message, enum, enum value, field, oneof, service, method and extension. */
  private readonly symbols = new Map<string, DescFile>();
  /**
   * Extensions by the type name of the message they extend. Every message has
   * an entry, so a missing one means the type is unknown.
   */
  private readonly extensions = new Map<string, DescExtension[]>();

  constructor(services: DescService[]) {
    this.serviceNames = [...new Set(services.map((s) => s.typeName))];
    for (const service of services) this.addFile(service.file);
  }

  async *serve<R extends ReflectionRequest>(requests: AsyncIterable<R>) {
    // Files already sent on this stream; the protocol lets us skip resending
    // them as dependencies, and clients cache per stream.
    const sent = new Set<string>();
    for await (const request of requests) {
      yield { validHost: request.host, originalRequest: request, messageResponse: this.answer(request, sent) };
    }
  }

  private answer({ messageRequest: req }: ReflectionRequest, sent: Set<string>): ReflectionAnswer {
    switch (req.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames.map((name) => ({ name })) } };
      case "fileByFilename":
        return this.fileResponse(this.files.get(req.value), sent) ?? notFound(`file not found: ${req.value}`);
      case "fileContainingSymbol":
        return this.fileResponse(this.symbols.get(req.value), sent) ?? notFound(`symbol not found: ${req.value}`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = req.value;
        const ext = this.extensions.get(containingType)?.find((e) => e.number === extensionNumber);
        return (
          this.fileResponse(ext?.file, sent) ?? notFound(`extension ${extensionNumber} of ${containingType} not found`)
        );
      }
      case "allExtensionNumbersOfType": {
        // Like grpc-go: NOT_FOUND only for unknown types; a message without
        // extensions gets an empty list.
        const extensions = this.extensions.get(req.value);
        if (extensions === undefined) return notFound(`message type not found: ${req.value}`);
        const numbers = extensions.map((e) => e.number);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value, extensionNumber: numbers } };
      }
      case undefined:
        return error(Code.InvalidArgument, "empty message_request");
    }
  }

  /** The file first, then its transitive imports not yet sent on this stream. */
  private fileResponse(file: DescFile | undefined, sent: Set<string>): ReflectionAnswer | undefined {
    if (file === undefined) return undefined;
    const out: Uint8Array[] = [];
    const queue = [file];
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const name = f.proto.name;
      // The requested file is always sent, even if sent before: the client
      // asked for it, and an empty answer would look like "not found".
      if (out.length > 0 && sent.has(name)) continue;
      sent.add(name);
      out.push(this.encode(f));
      queue.push(...f.dependencies);
    }
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file.proto.name);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.encoded.set(file.proto.name, bytes);
    }
    return bytes;
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    file.dependencies.forEach((dep) => this.addFile(dep));

    const add = (name: string) => this.symbols.set(name, file);
    for (const type of nestedTypes(file)) {
      add(type.typeName);
      switch (type.kind) {
        case "message":
          type.fields.forEach((f) => add(`${type.typeName}.${f.name}`));
          type.oneofs.forEach((o) => add(`${type.typeName}.${o.name}`));
          if (!this.extensions.has(type.typeName)) this.extensions.set(type.typeName, []);
          break;
        case "enum": {
          // Enum values are scoped like C++ enumerators: as siblings of the
          // enum (sharegraph.v1.ROLE_VIEWER), not inside it.
          const scope = type.typeName.slice(0, type.typeName.lastIndexOf(".") + 1);
          type.values.forEach((v) => add(scope + v.name));
          break;
        }
        case "service":
          type.methods.forEach((m) => add(`${type.typeName}.${m.name}`));
          break;
        case "extension": {
          const list = this.extensions.get(type.extendee.typeName) ?? [];
          this.extensions.set(type.extendee.typeName, [...list, type]);
          break;
        }
      }
    }
  }
}

function error(errorCode: Code, errorMessage: string): ReflectionAnswer {
  return { case: "errorResponse", value: { errorCode, errorMessage } };
}

function notFound(message: string): ReflectionAnswer {
  return error(Code.NotFound, message);
}
