/**
 * The validation files state relationships as sharegraph writes them,
 * closures included: each file's folder `ancestor` relationships must be
 * exactly the closure of its folder `parent` relationships, and its
 * workspace `ancestor_or_self`, `descendant_or_self` and `relative`
 * relationships the closure of its workspaces and their `parent`
 * relationships (as the store keeps them); and each grant and workspace
 * level must come with the cumulative relations graph.ts writes beside it
 * (view_role …, view_level …); and group membership must be a closure
 * (each group's stand-in is its member, and a group whose stand-in is in
 * another has all its members there too), with no nested `group#member`
 * subject left. Otherwise the
 * files would prove answers for data sharegraph never writes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CUMULATIVE_RELATIONS, CUMULATIVE_ROLE_RELATIONS, CUMULATIVE_WORKSPACE_RELATIONS } from "../../src/domain/graph.js";
import { groupStandIn } from "../../src/engine/group-subjects.js";

const DIR = join(import.meta.dirname, "../../schema/validations");

/** Every (object, object above it) pair of the tree given by `parents`. */
function pairsAbove(parents: Map<string, string>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const id of parents.keys()) {
    for (let up = parents.get(id), guard = 0; up !== undefined && guard < 100; up = parents.get(up), guard++) out.push([id, up]);
  }
  return out;
}

function parentsOf(lines: readonly string[], type: string): Map<string, string> {
  const parents = new Map<string, string>();
  const pattern = new RegExp(`^${type}:([^#]+)#parent@${type}:(\\S+)$`);
  for (const line of lines) {
    const m = pattern.exec(line);
    if (m) parents.set(m[1]!, m[2]!);
  }
  return parents;
}

const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml"));
const linesOf = (file: string) => ((parse(readFileSync(join(DIR, file), "utf8")) as { relationships?: string }).relationships ?? "").split("\n").map((l) => l.trim());

describe("validation files carry the folder closure", () => {
  for (const file of files) {
    it(`${file}: ancestor relationships = closure of parent relationships`, () => {
      const lines = linesOf(file);
      const ancestors = lines.filter((l) => /^folder:[^#]+#ancestor@/.test(l)).sort();
      expect(ancestors).toEqual(pairsAbove(parentsOf(lines, "folder")).map(([f, a]) => `folder:${f}#ancestor@folder:${a}`).sort());
    });
  }
});

/** The workspace closure sharegraph writes (src/domain/graph.ts) for these workspaces and parent links. */
function workspaceClosure(workspaces: readonly string[], parents: Map<string, string>): string[] {
  const out: string[] = [];
  for (const w of workspaces) for (const relation of ["ancestor_or_self", "descendant_or_self", "relative"]) out.push(`workspace:${w}#${relation}@workspace:${w}`);
  for (const [w, a] of pairsAbove(parents)) {
    out.push(`workspace:${w}#ancestor_or_self@workspace:${a}`, `workspace:${a}#descendant_or_self@workspace:${w}`, `workspace:${w}#relative@workspace:${a}`, `workspace:${a}#relative@workspace:${w}`);
  }
  return out.sort();
}

describe("validation files carry the workspace closure", () => {
  for (const file of files) {
    it(`${file}: ancestor_or_self, descendant_or_self and relative = the closure of the workspaces and their parent relationships`, () => {
      const lines = linesOf(file);
      const workspaces = lines.flatMap((l) => /^workspace:([^#]+)#organization@/.exec(l)?.[1] ?? []);
      const written = lines.filter((l) => /^workspace:[^#]+#(ancestor_or_self|descendant_or_self|relative)@/.test(l)).sort();
      expect(written).toEqual(workspaceClosure(workspaces, parentsOf(lines, "workspace")));
    });
  }

  it("r6-r7-workspace-caps.yaml has a tree of three levels (the closure is more than the parent links)", () => {
    const parents = parentsOf(linesOf("r6-r7-workspace-caps.yaml"), "workspace");
    expect(pairsAbove(parents).length).toBeGreaterThan(parents.size);
  });
});

const CONTENT_TYPES = new Set(["report", "board", "dashboard", "workbook", "folder"]);

/** What graph.ts writes beside each grant or workspace level among these relationships. */
function cumulativeOf(lines: readonly string[]): string[] {
  return lines.flatMap((line) => {
    const m = /^([a-z_]+):([^#]+)#([a-z_]+)@(\S+)$/.exec(line);
    if (!m) return [];
    const [, type, id, relation, subject] = m;
    const table = CONTENT_TYPES.has(type!) ? CUMULATIVE_ROLE_RELATIONS : type === "workspace" ? CUMULATIVE_WORKSPACE_RELATIONS : {};
    return (table[relation!] ?? []).map((r) => `${type}:${id}#${r}@${subject}`);
  });
}

describe("validation files carry the cumulative role relations", () => {
  for (const file of files) {
    it(`${file}: view_role, share_role, edit_role, view_level and analyze_level = what its grants and levels imply`, () => {
      const lines = linesOf(file);
      const written = lines.filter((l) => CUMULATIVE_RELATIONS.has(/#([a-z_]+)@/.exec(l)?.[1] ?? "")).sort();
      expect(written).toEqual(cumulativeOf(lines).sort());
    });
  }

  it("r1-inheritance.yaml grants every content role, so each cumulative relation is exercised", () => {
    const relations = new Set(linesOf("r1-inheritance.yaml").map((l) => /#([a-z_]+)@/.exec(l)?.[1]));
    for (const r of ["view_role", "share_role", "edit_role"]) expect(relations).toContain(r);
  });
});

describe("validation files carry the group closure", () => {
  for (const file of files) {
    it(`${file}: each group has its stand-in; a group's members (stand-ins included) are members of every group its stand-in is in; no nested member relationship`, () => {
      const lines = linesOf(file);
      const members = new Map<string, Set<string>>();
      const groups = lines.flatMap((l) => /^group:([^#]+)#organization@/.exec(l)?.[1] ?? []);
      for (const line of lines) {
        expect(line, "nesting is written as the closure, not as group#member subjects").not.toMatch(/^group:[^#]+#member@group:/);
        const member = /^group:([^#]+)#member@user:(\S+)$/.exec(line);
        if (member) members.set(member[1]!, (members.get(member[1]!) ?? new Set()).add(member[2]!));
      }
      for (const group of groups) expect(members.get(group)?.has(groupStandIn(group)), `stand-in of group ${group}`).toBe(true);
      for (const outer of groups) {
        for (const inner of groups) {
          if (inner === outer || !members.get(outer)?.has(groupStandIn(inner))) continue;
          for (const user of members.get(inner) ?? []) expect(members.get(outer)?.has(user), `${user} of group ${inner} in group ${outer}`).toBe(true);
        }
      }
    });
  }

  it("r1-inheritance.yaml nests a group, so the closure is exercised", () => {
    expect(linesOf("r1-inheritance.yaml")).toContain(`group:analysts#member@user:${groupStandIn("emea")}`);
  });
});
