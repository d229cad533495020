import type http2 from "node:http2";
import { toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type ContextValues, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import {
  compressionNegotiate,
  encodeEnvelope,
  envelopeCompress,
  invokeUnaryImplementation,
  type Compression,
  type EnvelopedMessage,
} from "@connectrpc/connect/protocol";
import * as grpcWire from "@connectrpc/connect/protocol-grpc";

/*
 * gRPC unary calls (HTTP/2, protobuf) answered without Connect's generic
 * handler pipeline. The front door has already admitted the call (key,
 * limits, timeout header) and read and decoded its one message; what Connect
 * would add for a unary call is a chain of async iterables, two linked abort
 * controllers per call and a DOMException per finished call — a quarter of the
 * gateway's CPU per CheckPermission (docs/PERFORMANCE.md, round 9).
 *
 * Only the transport is ours: the call runs through Connect's own
 * invokeUnaryImplementation with the same interceptors (observe, refusal,
 * auth, deadline, validation) and a context from Connect's
 * createHandlerContext, and the status goes into the trailers with Connect's
 * setTrailerStatus; the response is compressed as Connect negotiates it.
 * Everything else (gRPC-Web, Connect, JSON, streams, refusals) stays on
 * Connect's handlers.
 */

export type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;

export interface GrpcUnaryOptions {
  // Mutable types only because Connect's functions take them so; never changed, so not copied per call.
  readonly interceptors: Interceptor[];
  readonly shutdownSignal: AbortSignal;
  readonly acceptCompression: Compression[];
  /** Responses smaller than this are not compressed (Connect's default). */
  readonly compressMinBytes: number;
}

/** The reason a finished call's signal aborts with: a fixed one, so no DOMException is built per call. */
const CALL_COMPLETE = new ConnectError("the call is complete", Code.Canceled);
const CLIENT_GONE = new ConnectError("the client cancelled the call", Code.Canceled);

export async function serveGrpcUnary(
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  spec: UnarySpec,
  input: MessageShape<DescMessage>,
  contextValues: ContextValues,
  options: GrpcUnaryOptions,
): Promise<void> {
  const requestSignal = new AbortController();
  // (res.writableFinished is no guide: a stream reset by the client counts as finished.)
  const onClose = () => requestSignal.abort(CLIENT_GONE);
  req.once("close", onClose);
  const header = requestHeader(req);
  // The front door refused a malformed timeout before the call got here.
  const timeout = grpcWire.parseTimeout(header.get(grpcWire.headerTimeout), Number.MAX_SAFE_INTEGER);
  const context = createHandlerContext({
    ...spec,
    service: spec.method.parent,
    requestMethod: "POST",
    protocolName: "grpc",
    ...(timeout.timeoutMs !== undefined ? { timeoutMs: timeout.timeoutMs } : {}),
    shutdownSignal: options.shutdownSignal,
    requestSignal: requestSignal.signal,
    requestHeader: header,
    url: `http://${req.authority}${req.url}`,
    responseHeader: { [grpcWire.headerContentType]: grpcWire.contentTypeProto },
    responseTrailer: { [grpcWire.headerGrpcStatus]: grpcWire.grpcStatusOk },
    contextValues,
  });
  // The request's grpc-encoding was undone by the front door; the response's follows grpc-accept-encoding.
  const compression = compressionNegotiate(
    options.acceptCompression,
    null,
    header.get(grpcWire.headerAcceptEncoding),
    grpcWire.headerAcceptEncoding,
  ).response;
  let body: Uint8Array | undefined;
  try {
    const output = await invokeUnaryImplementation(spec, context, input, options.interceptors);
    let envelope: EnvelopedMessage = { flags: 0, data: toBinary(spec.method.output, output) };
    if (compression) {
      envelope = await envelopeCompress(envelope, compression, options.compressMinBytes);
      if (envelope.flags !== 0) context.responseHeader.set(grpcWire.headerEncoding, compression.name);
    }
    body = encodeEnvelope(envelope.flags, envelope.data);
  } catch (err) {
    grpcWire.setTrailerStatus(
      context.responseTrailer,
      err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err),
    );
  } finally {
    context.abort(CALL_COMPLETE);
  }
  req.off("close", onClose);
  // A client that went away meanwhile: nothing to answer (Connect's handler would fail to write, too).
  if (res.writableEnded || res.stream.destroyed) return;
  res.writeHead(200, nodeHeaders(context.responseHeader));
  res.addTrailers(nodeHeaders(context.responseTrailer));
  if (body) res.end(body);
  else res.end();
}

/** The request's headers as Connect's handlers see them: without HTTP/2 pseudo-headers. */
function requestHeader(req: http2.Http2ServerRequest): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) header.append(name, v);
    else header.set(name, value);
  }
  return header;
}

function nodeHeaders(headers: Headers): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [name, value] of headers) out[name] = value;
  return out;
}
