import type { Member } from "../domain/directory.js";
import { invalid } from "../domain/errors.js";
import { requireId } from "../domain/ids.js";
import type { Page } from "../store/paging.js";
import type { Freshness } from "../sync/consistency.js";
import type { Consistency, PageRequest, SubjectRef } from "../gen/sharegraph/v1/common_pb.js";

/*
 * Request parsing shared by the handlers: each function returns a typed value
 * or throws INVALID_ARGUMENT naming the request field.
 */

export function freshness(consistency: Consistency | undefined): Freshness {
  const requirement = consistency?.requirement;
  switch (requirement?.case) {
    case undefined:
    case "minimizeLatency":
      return { kind: "minimize_latency" };
    case "fullyConsistent":
      return { kind: "fully_consistent" };
    case "atLeastAsFresh":
      if (!requirement.value) throw invalid("consistency.at_least_as_fresh", "a consistency_token is required");
      return { kind: "at_least_as_fresh", token: requirement.value };
  }
}

export function actor(value: string): string {
  return requireId("actor", value);
}

/** A user or a group (standing for its members). */
export function member(field: string, ref: SubjectRef | undefined): Member {
  if (!ref) throw invalid(field, "is required");
  if (ref.type === "user") {
    if (ref.relation) throw invalid(`${field}.relation`, "a user subject has no relation");
    return { kind: "user", id: requireId(`${field}.id`, ref.id) };
  }
  if (ref.type === "group") {
    if (ref.relation && ref.relation !== "member") throw invalid(`${field}.relation`, 'a group stands for its "member"s; omit relation or use "member"');
    return { kind: "group", id: requireId(`${field}.id`, ref.id) };
  }
  throw invalid(`${field}.type`, `expected "user" or "group", got ${JSON.stringify(ref.type)}`);
}

export function memberRef(m: Member): { type: string; id: string; relation: string } {
  return m.kind === "user" ? { type: "user", id: m.id, relation: "" } : { type: "group", id: m.id, relation: "member" };
}

const DEFAULT_PAGE_SIZE = 100;

export function page(request: PageRequest | undefined, maxPageSize: number): Page {
  const size = request?.pageSize || DEFAULT_PAGE_SIZE;
  if (size > maxPageSize) throw invalid("page.page_size", `at most ${maxPageSize}`);
  const token = request?.pageToken;
  if (!token) return { limit: size };
  let after: string;
  try {
    after = Buffer.from(token, "base64url").toString("utf8");
  } catch {
    throw invalid("page.page_token", "not a page token from this API");
  }
  if (!after || !/^[A-Za-z0-9/_|=+-]{1,1024}$/.test(after)) throw invalid("page.page_token", "not a page token from this API");
  return { limit: size, after };
}

export function nextPageToken(next: string | undefined): string {
  return next === undefined ? "" : Buffer.from(next, "utf8").toString("base64url");
}

export function timestamp(date: Date | null | undefined): string {
  return date ? date.toISOString() : "";
}
