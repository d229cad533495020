/**
 * The validation files state relationships as sharegraph writes them,
 * closures included: each file's folder `ancestor` relationships must be
 * exactly the closure of its folder `parent` relationships, and its
 * workspace `ancestor` and `descendant` relationships the closure of its
 * workspace `parent` relationships and its inverse (as the store keeps
 * them), or the files would prove answers for data sharegraph never writes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

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

describe("validation files carry the workspace closure", () => {
  for (const file of files) {
    it(`${file}: workspace ancestor and descendant relationships = closure of parent relationships and its inverse`, () => {
      const lines = linesOf(file);
      const pairs = pairsAbove(parentsOf(lines, "workspace"));
      expect(lines.filter((l) => /^workspace:[^#]+#ancestor@/.test(l)).sort()).toEqual(pairs.map(([w, a]) => `workspace:${w}#ancestor@workspace:${a}`).sort());
      expect(lines.filter((l) => /^workspace:[^#]+#descendant@/.test(l)).sort()).toEqual(pairs.map(([w, a]) => `workspace:${a}#descendant@workspace:${w}`).sort());
    });
  }

  it("r6-r7-workspace-caps.yaml has a tree of three levels (the closure is more than the parent links)", () => {
    const pairs = pairsAbove(parentsOf(linesOf("r6-r7-workspace-caps.yaml"), "workspace"));
    expect(pairs.length).toBeGreaterThan(parentsOf(linesOf("r6-r7-workspace-caps.yaml"), "workspace").size);
  });
});
