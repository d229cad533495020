import { Role } from "../../gen/sharegraph/v1/common_pb.js";
import { expectPositionals, formatObject, parseObject, parseSubject, requireActor, UsageError } from "../args.js";
import { EXIT_OK, type Command } from "../command.js";

const ROLES: Record<string, Role> = { viewer: Role.VIEWER, sharer: Role.SHARER, editor: Role.EDITOR, manager: Role.MANAGER };
const ROLE_NAMES = new Map(Object.entries(ROLES).map(([name, role]) => [role, name]));

const ACTOR = { actor: { type: "string" } } as const;

export const share: Command = {
  name: "share",
  summary: "give a subject a role on a folder or content item",
  usage: `sharegraph share <resource> <role> <subject> --actor <user>
  e.g. sharegraph share dashboard:q3-revenue viewer user:dave --actor alice
  roles: viewer, sharer, editor, manager; subjects: user:ID, group:ID, organization:ID
  --actor <user>   the user who shares (required; the server checks they may)`,
  options: ACTOR,
  async run(ctx, positionals, values) {
    expectPositionals(positionals, 3, "share <resource> <role> <subject> --actor <user>");
    const resource = parseObject(positionals[0], "resource");
    const role = ROLES[positionals[1]!.toLowerCase()];
    if (role === undefined) throw new UsageError(`role ${JSON.stringify(positionals[1])}: one of ${Object.keys(ROLES).join(", ")}`);
    const subject = parseSubject(positionals[2]);
    const actor = requireActor(values["actor"] as string | undefined);
    const res = await ctx.clients().content.share({ actor, resource, subject, role });
    const { out } = ctx;
    const granted = res.grant ? ROLE_NAMES.get(res.grant.role) ?? "" : "";
    if (out.json) {
      out.data({ resource: formatObject(resource), subject: formatObject(subject), role: positionals[1]!.toLowerCase(), grant: granted || null, noOp: res.noOp, consistencyToken: res.consistencyToken });
    } else if (res.noOp) {
      out.line(`${out.yellow("unchanged")}: ${formatObject(subject)} already has ${granted || positionals[1]!.toLowerCase()} on ${formatObject(resource)} (granted or inherited)`);
      out.line(out.dim(`consistency token: ${res.consistencyToken}`));
    } else {
      out.line(`${out.green("shared")}: ${formatObject(subject)} is ${granted} on ${formatObject(resource)}`);
      out.line(out.dim(`consistency token: ${res.consistencyToken}`));
    }
    return EXIT_OK;
  },
};

export const unshare: Command = {
  name: "unshare",
  summary: "remove a subject's direct grant on a folder or content item",
  usage: `sharegraph unshare <resource> <subject> --actor <user>
  e.g. sharegraph unshare dashboard:q3-revenue user:bob --actor alice
  --actor <user>   the user who removes the grant (required)`,
  options: ACTOR,
  async run(ctx, positionals, values) {
    expectPositionals(positionals, 2, "unshare <resource> <subject> --actor <user>");
    const resource = parseObject(positionals[0], "resource");
    const subject = parseSubject(positionals[1]);
    const actor = requireActor(values["actor"] as string | undefined);
    const res = await ctx.clients().content.unshare({ actor, resource, subject });
    const { out } = ctx;
    if (out.json) out.data({ resource: formatObject(resource), subject: formatObject(subject), consistencyToken: res.consistencyToken });
    else {
      out.line(`${out.green("unshared")}: ${formatObject(subject)} has no direct grant on ${formatObject(resource)} now`);
      out.line(out.dim(`consistency token: ${res.consistencyToken} (pass it as --token to a check to see this change)`));
    }
    return EXIT_OK;
  },
};

export const partners: Command = {
  name: "partners",
  summary: "an organization's partner organizations, pending invitations and channel partners",
  usage: `sharegraph partners <organization>
  e.g. sharegraph partners acme
  --query <text>   only partners whose name (or pending email) matches`,
  options: { query: { type: "string" } },
  async run(ctx, positionals, values) {
    expectPositionals(positionals, 1, "partners <organization>");
    const organization = positionals[0]!.replace(/^organization:/, "");
    const query = (values["query"] as string | undefined) ?? "";
    const clients = ctx.clients();
    const res = await clients.partner.listPartners({ ownerOrganizationId: organization, query });
    const channel = [];
    let pageToken = "";
    do {
      const page = await clients.partner.listChannelPartners({ customerOrganizationId: organization, query, page: { pageSize: 1000, pageToken } });
      channel.push(...page.partners);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const { out } = ctx;
    if (out.json) {
      out.data({
        organization,
        partners: res.partners.map((p) => ({ organization: p.organizationId, name: p.organizationName, sharedReports: p.sharedReports, sharedBoards: p.sharedBoards, since: p.since })),
        pendingInvitations: res.pendingInvitations.map((i) => ({ id: i.id, email: i.email, status: i.status, items: i.items.map(formatObject), invitedBy: i.invitedBy, expiresAt: i.expiresAt })),
        channelPartners: channel.map((c) => ({ organization: c.organizationId, name: c.organizationName, addedUsers: c.addedUsers, channelPartner: c.channelPartner, since: c.since })),
      });
      return EXIT_OK;
    }
    const title = (text: string) => out.line(out.bold(text));
    title(`Partners of ${organization}`);
    if (res.partners.length === 0) out.line(out.dim("  none"));
    out.table(
      ["ORGANIZATION", "NAME", "REPORTS", "BOARDS", "SINCE"],
      res.partners.map((p) => [p.organizationId, p.organizationName, String(p.sharedReports), String(p.sharedBoards), p.since.slice(0, 10)]),
    );
    if (res.pendingInvitations.length > 0) {
      out.line();
      title("Pending invitations");
      out.table(
        ["EMAIL", "ITEMS", "INVITED BY", "EXPIRES"],
        res.pendingInvitations.map((i) => [i.email, i.items.map(formatObject).join(", "), i.invitedBy, i.expiresAt.slice(0, 10)]),
      );
    }
    out.line();
    title("Channel partners");
    if (channel.length === 0) out.line(out.dim("  none"));
    out.table(
      ["ORGANIZATION", "NAME", "ADDED USERS", "CLASSIFIED", "SINCE"],
      channel.map((c) => [c.organizationId, c.organizationName, String(c.addedUsers), c.channelPartner ? "yes" : out.yellow("no (no access)"), c.since.slice(0, 10)]),
    );
    return EXIT_OK;
  },
};
