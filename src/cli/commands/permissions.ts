import { expectPositionals, formatObject, parseObject, parseSubject, UsageError } from "../args.js";
import { CONSISTENCY_OPTIONS, consistencyOf, EXIT_DENIED, EXIT_OK, type Command } from "../command.js";

const CONSISTENCY_HELP = `  --fully-consistent   read the newest data
  --token <token>      read at least as fresh as a write's consistency token`;

export const check: Command = {
  name: "check",
  summary: "can a subject do something on a resource? (exit 0 allowed, 1 denied)",
  usage: `sharegraph check <resource> <permission> <subject>
  e.g. sharegraph check dashboard:q3-revenue edit user:dave
${CONSISTENCY_HELP}
Prints allowed or denied; exits 0 when allowed, 1 when denied, 2 on an error.`,
  options: CONSISTENCY_OPTIONS,
  async run(ctx, positionals, values) {
    expectPositionals(positionals, 3, "check <resource> <permission> <subject>");
    const resource = parseObject(positionals[0], "resource");
    const permission = positionals[1]!;
    const subject = parseSubject(positionals[2]);
    const consistency = consistencyOf(values);
    const res = await ctx.clients().permission.checkPermission({ resource, permission, subject, ...(consistency ? { consistency } : {}) });
    const { out } = ctx;
    if (out.json) {
      out.data({ allowed: res.allowed, resource: formatObject(resource), permission, subject: formatObject(subject), consistencyToken: res.consistencyToken });
    } else {
      const sentence = `${formatObject(subject)} ${res.allowed ? "can" : "cannot"} ${permission} ${formatObject(resource)}`;
      out.line(res.allowed ? `${out.green("allowed")}: ${sentence}` : `${out.red("denied")}: ${sentence}`);
    }
    return res.allowed ? EXIT_OK : EXIT_DENIED;
  },
};

export const explain: Command = {
  name: "explain",
  summary: "why a subject has, or lacks, a permission (exit 0 allowed, 1 denied)",
  usage: `sharegraph explain <resource> <permission> <subject>
  e.g. sharegraph explain dashboard:q3-revenue edit user:bob
${CONSISTENCY_HELP}`,
  options: CONSISTENCY_OPTIONS,
  async run(ctx, positionals, values) {
    expectPositionals(positionals, 3, "explain <resource> <permission> <subject>");
    const resource = parseObject(positionals[0], "resource");
    const permission = positionals[1]!;
    const subject = parseSubject(positionals[2]);
    const consistency = consistencyOf(values);
    const res = await ctx.clients().permission.explainPermission({ resource, permission, subject, ...(consistency ? { consistency } : {}) });
    const { out } = ctx;
    const paths = (list: typeof res.grantingPaths) => list.map((p) => ({ summary: p.summary, steps: p.steps.map((s) => `${formatObject(s.object)} ${s.link} ${formatObject(s.target)}`) }));
    if (out.json) {
      out.data({
        allowed: res.allowed,
        explanation: res.explanation,
        grantingPaths: paths(res.grantingPaths),
        partialPaths: paths(res.partialPaths),
        missing: res.missing,
        consistencyToken: res.consistencyToken,
      });
    } else {
      out.line(`${res.allowed ? out.green("allowed") : out.red("denied")}: ${res.explanation}`);
      const section = (title: string, list: typeof res.grantingPaths) => {
        if (list.length === 0) return;
        out.line();
        out.line(out.bold(title));
        for (const p of list) {
          out.line(`  • ${p.summary}`);
          for (const s of p.steps) out.line(out.dim(`      ${formatObject(s.object)} ${s.link} ${formatObject(s.target)}`));
        }
      };
      section("Granted by", res.grantingPaths);
      section("What exists", res.partialPaths);
      if (res.missing.length > 0) {
        out.line();
        out.line(out.bold("Missing"));
        for (const m of res.missing) out.line(`  • ${m}`);
      }
    }
    return res.allowed ? EXIT_OK : EXIT_DENIED;
  },
};

export const lookup: Command = {
  name: "lookup",
  summary: "resources a subject can reach, or subjects that can reach a resource",
  usage: `sharegraph lookup resources <resource-type> <permission> <subject>
  e.g. sharegraph lookup resources dashboard view user:carol
sharegraph lookup subjects <resource> <permission> <subject-type[#relation]>
  e.g. sharegraph lookup subjects workspace:emea analyze user
${CONSISTENCY_HELP}`,
  options: CONSISTENCY_OPTIONS,
  async run(ctx, positionals, values) {
    const [what, ...rest] = positionals;
    const consistency = consistencyOf(values);
    const { out } = ctx;
    if (what === "resources") {
      expectPositionals(rest, 3, "lookup resources <resource-type> <permission> <subject>");
      const [resourceType, permission] = rest as [string, string];
      const subject = parseSubject(rest[2]);
      const ids: string[] = [];
      let token = "";
      for await (const r of ctx.clients().permission.lookupResources({ resourceType, permission, subject, ...(consistency ? { consistency } : {}) })) {
        ids.push(r.resourceId);
        token = r.consistencyToken;
      }
      ids.sort();
      if (out.json) out.data({ resourceType, permission, subject: formatObject(subject), resources: ids, consistencyToken: token });
      else if (ids.length === 0) out.line(out.dim(`no ${resourceType} on which ${formatObject(subject)} can ${permission}`));
      else for (const id of ids) out.line(`${resourceType}:${id}`);
      return EXIT_OK;
    }
    if (what === "subjects") {
      expectPositionals(rest, 3, "lookup subjects <resource> <permission> <subject-type[#relation]>");
      const resource = parseObject(rest[0], "resource");
      const permission = rest[1]!;
      const [subjectType = "", subjectRelation = ""] = rest[2]!.split("#");
      if (!/^[a-z][a-z0-9_]*$/.test(subjectType)) throw new UsageError(`subject type ${JSON.stringify(rest[2])}: e.g. user, or group#member`);
      const ids: string[] = [];
      let token = "";
      for await (const s of ctx.clients().permission.lookupSubjects({ resource, permission, subjectType, subjectRelation, ...(consistency ? { consistency } : {}) })) {
        ids.push(s.subjectId);
        token = s.consistencyToken;
      }
      ids.sort();
      const suffix = subjectRelation ? `#${subjectRelation}` : "";
      if (out.json) out.data({ resource: formatObject(resource), permission, subjectType: rest[2], subjects: ids, consistencyToken: token });
      else if (ids.length === 0) out.line(out.dim(`no ${subjectType} can ${permission} ${formatObject(resource)}`));
      else for (const id of ids) out.line(`${subjectType}:${id}${suffix}`);
      return EXIT_OK;
    }
    throw new UsageError('lookup what? "lookup resources …" or "lookup subjects …"');
  },
};
