/**
 * The validation files state relationships as sharegraph writes them,
 * closures included: each file's folder `ancestor` relationships must be
 * exactly the closure of its `parent` relationships (as the store keeps
 * them), or the files would prove answers for data sharegraph never writes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const DIR = join(import.meta.dirname, "../../schema/validations");

function closureOf(parents: Map<string, string>): string[] {
  const out: string[] = [];
  for (const folder of parents.keys()) {
    for (let up = parents.get(folder), guard = 0; up !== undefined && guard < 100; up = parents.get(up), guard++) {
      out.push(`folder:${folder}#ancestor@folder:${up}`);
    }
  }
  return out.sort();
}

describe("validation files carry the folder closure", () => {
  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".yaml"))) {
    it(`${file}: ancestor relationships = closure of parent relationships`, () => {
      const doc = parse(readFileSync(join(DIR, file), "utf8")) as { relationships?: string };
      const lines = (doc.relationships ?? "").split("\n").map((l) => l.trim());
      const parents = new Map<string, string>();
      for (const line of lines) {
        const m = /^folder:([^#]+)#parent@folder:(\S+)$/.exec(line);
        if (m) parents.set(m[1]!, m[2]!);
      }
      const ancestors = lines.filter((l) => /^folder:[^#]+#ancestor@/.test(l)).sort();
      expect(ancestors).toEqual(closureOf(parents));
    });
  }
});
