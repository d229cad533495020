import type { ExpressionBuilder, Kysely } from "kysely";
import type { ContentKind, Database, RoleName, Row } from "./database.js";

export type GrantRow = Row<"grants">;

export type GrantResource = { readonly folderId: string } | { readonly contentId: string; readonly kind: ContentKind };
export type GrantSubject = { readonly userId: string } | { readonly groupId: string } | { readonly organizationId: string };

export class GrantsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async find(resource: GrantResource, subject: GrantSubject, lock = false): Promise<GrantRow | undefined> {
    const q = this.db
      .selectFrom("grants")
      .selectAll()
      .where((eb) => onResource(eb, resource))
      .where((eb) => ofSubject(eb, subject));
    return (lock ? q.forUpdate() : q).executeTakeFirst();
  }

  /** Sets the subject's role on the resource; returns the row before (if any) and after. */
  async upsert(
    resource: GrantResource,
    subject: GrantSubject,
    role: RoleName,
    grantedBy: string,
  ): Promise<{ before: GrantRow | undefined; after: GrantRow }> {
    const inserted = await this.db
      .insertInto("grants")
      .values({
        resource_type: "folderId" in resource ? "folder" : resource.kind,
        folder_id: "folderId" in resource ? resource.folderId : null,
        content_id: "contentId" in resource ? resource.contentId : null,
        user_id: "userId" in subject ? subject.userId : null,
        group_id: "groupId" in subject ? subject.groupId : null,
        organization_id: "organizationId" in subject ? subject.organizationId : null,
        role,
        granted_by: grantedBy,
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return { before: undefined, after: inserted };
    const before = await this.find(resource, subject, true);
    if (!before) throw new Error("grant vanished between insert and update");
    const after = await this.db
      .updateTable("grants")
      .set({ role, granted_by: grantedBy })
      .where("id", "=", before.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return { before, after };
  }

  async remove(resource: GrantResource, subject: GrantSubject): Promise<GrantRow | undefined> {
    const row = await this.find(resource, subject, true);
    if (!row) return undefined;
    await this.db.deleteFrom("grants").where("id", "=", row.id).execute();
    return row;
  }

  /** Grants on one resource. */
  async on(resource: GrantResource): Promise<GrantRow[]> {
    return this.db
      .selectFrom("grants")
      .selectAll()
      .where((eb) => onResource(eb, resource))
      .orderBy("id")
      .execute();
  }

  /** Grants on any of these folders. */
  async onFolders(folderIds: readonly string[]): Promise<GrantRow[]> {
    if (folderIds.length === 0) return [];
    return this.db.selectFrom("grants").selectAll().where("folder_id", "in", folderIds).orderBy("id").execute();
  }
}

type GrantsExpression = ExpressionBuilder<Database, "grants">;

function onResource(eb: GrantsExpression, resource: GrantResource) {
  return "folderId" in resource ? eb("folder_id", "=", resource.folderId) : eb("content_id", "=", resource.contentId);
}

function ofSubject(eb: GrantsExpression, subject: GrantSubject) {
  if ("userId" in subject) return eb("user_id", "=", subject.userId);
  if ("groupId" in subject) return eb("group_id", "=", subject.groupId);
  return eb("organization_id", "=", subject.organizationId);
}
