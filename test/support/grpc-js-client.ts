import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type { Code} from "@connectrpc/connect";
import { ConnectError, type Client } from "@connectrpc/connect";

/**
 * A client for a sharegraph service made with @grpc/grpc-js instead of
 * Connect, shaped like a Connect client (promises for unary calls, async
 * iterables for server streams, ConnectError on failure) so that one test
 * suite can drive the server through both stacks.
 */
export function grpcJsClient<S extends DescService>(service: S, address: string, apiKey: string | undefined): { client: Client<S>; close(): void } {
  const definition: Record<string, grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(definition, service.typeName);
  const raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const metadata = () => {
    const md = new grpc.Metadata();
    if (apiKey !== undefined) md.set("authorization", `Bearer ${apiKey}`);
    return md;
  };
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    const call = raw[method.localName]!.bind(raw);
    if (method.methodKind === "unary") client[method.localName] = (req: Record<string, unknown>) => unary(call, method, req, metadata());
    else if (method.methodKind === "server_streaming") client[method.localName] = (req: Record<string, unknown>) => serverStream(call, method, req, metadata());
  }
  return { client: client as Client<S>, close: () => (raw as unknown as grpc.Client).close() };
}

function unary(call: (...args: unknown[]) => unknown, method: DescMethod, req: Record<string, unknown>, md: grpc.Metadata): Promise<unknown> {
  return new Promise((resolve, reject) => {
    call(create(method.input, req), md, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(toConnectError(err)) : resolve(res)));
  });
}

async function* serverStream(call: (...args: unknown[]) => unknown, method: DescMethod, req: Record<string, unknown>, md: grpc.Metadata): AsyncIterable<unknown> {
  const stream = call(create(method.input, req), md) as grpc.ClientReadableStream<unknown>;
  try {
    for await (const message of stream) yield message;
  } catch (err) {
    throw toConnectError(err as grpc.ServiceError);
  } finally {
    stream.cancel();
  }
}

/**
 * gRPC status codes and Connect codes share their numbers. grpc-js undoes
 * the percent-encoding of grpc-message with decodeURI, which leaves "%3A"
 * and friends; decode fully, as the spec (and grpc-go, grpcurl) do.
 */
function toConnectError(err: grpc.ServiceError): ConnectError {
  let message = err.details;
  try {
    message = decodeURIComponent(message);
  } catch {
    // not percent-encoded after all
  }
  return new ConnectError(message, err.code as number as Code);
}
