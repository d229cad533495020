import { sql, type Kysely, type Transaction } from "kysely";
import { BackupRepo } from "./backup.js";
import { cascadeDelete, type CascadeResult } from "./cascade.js";
import { ChannelPartnersRepo } from "./channel-partners.js";
import { openDatabase, ping, type DatabaseTarget, type OpenDatabase } from "./connect.js";
import type { Database, Row, TableName } from "./database.js";
import { ContentRepo, FoldersRepo } from "./content.js";
import { SharingQuestionsRepo } from "./sharing-questions.js";
import { DirectoryRightsRepo } from "./directory-rights.js";
import { ContentViewRepo } from "./content-view.js";
import { EntitiesRepo } from "./entities.js";
import { GrantsRepo } from "./grants.js";
import { translateStoreError } from "./errors.js";
import { GroupsRepo } from "./groups.js";
import { NotificationsRepo } from "./notifications.js";
import { migrateToLatest, type MigrationReport } from "./migrate.js";
import { OrganizationsRepo } from "./organizations.js";
import { OutboxRepo } from "./outbox.js";
import { PartnersRepo } from "./partners.js";
import { ServerKeysRepo } from "./server-keys.js";
import { ServicesRepo } from "./services.js";
import { UsersRepo } from "./users.js";
import { WorkspacesRepo } from "./workspaces.js";

/** Every repository, bound to the database or to one transaction. */
export class Repositories {
  readonly users: UsersRepo;
  readonly organizations: OrganizationsRepo;
  readonly groups: GroupsRepo;
  readonly workspaces: WorkspacesRepo;
  readonly entities: EntitiesRepo;
  readonly folders: FoldersRepo;
  readonly content: ContentRepo;
  readonly grants: GrantsRepo;
  readonly partners: PartnersRepo;
  readonly channelPartners: ChannelPartnersRepo;
  readonly services: ServicesRepo;
  readonly notifications: NotificationsRepo;
  readonly outbox: OutboxRepo;
  readonly serverKeys: ServerKeysRepo;
  readonly backup: BackupRepo;
  readonly contentView: ContentViewRepo;
  readonly sharingQuestions: SharingQuestionsRepo;
  readonly directoryRights: DirectoryRightsRepo;

  constructor(private readonly db: Kysely<Database>) {
    this.users = new UsersRepo(db);
    this.organizations = new OrganizationsRepo(db);
    this.groups = new GroupsRepo(db);
    this.workspaces = new WorkspacesRepo(db);
    this.entities = new EntitiesRepo(db);
    this.folders = new FoldersRepo(db);
    this.content = new ContentRepo(db);
    this.grants = new GrantsRepo(db);
    this.partners = new PartnersRepo(db);
    this.channelPartners = new ChannelPartnersRepo(db);
    this.services = new ServicesRepo(db);
    this.notifications = new NotificationsRepo(db);
    this.outbox = new OutboxRepo(db);
    this.serverKeys = new ServerKeysRepo(db);
    this.backup = new BackupRepo(db);
    this.contentView = new ContentViewRepo(db);
    this.sharingQuestions = new SharingQuestionsRepo(db);
    this.directoryRights = new DirectoryRightsRepo(db);
  }

  /**
   * Deletes rows by id and everything depending on them; returns all removed
   * and changed rows. A group deleted from inside others takes its members
   * out of those groups' closure too (the rows that only it implied).
   */
  async cascadeDelete(table: TableName, ids: readonly string[]): Promise<CascadeResult> {
    const result = await cascadeDelete(this.db, table, ids);
    const gone = new Set(result.removed.flatMap((r) => (r.table === "groups" ? [r.row.id] : [])));
    const above = new Set(
      result.removed.flatMap((r) => (r.table === "group_members" && r.row.member_group_id !== null && !gone.has(r.row.group_id) ? [r.row.group_id] : [])),
    );
    if (above.size === 0) return result;
    const closure = await this.groups.refreshClosure([...above]);
    // Removing a member never adds to a closure; a row added here would mean the closure was already wrong.
    if (closure.added.length > 0) throw new Error(`group closure was missing ${closure.added.length} rows before a cascade`);
    return { removed: [...result.removed, ...closure.removed.map((row) => ({ table: "group_closure" as const, row }))], changed: result.changed };
  }

  /**
   * Every row of a table in batches, through a cursor: memory stays bounded
   * by the batch, not the table. Only inside a transaction (the cursor lives
   * as long as it), and every batch is of the transaction's snapshot.
   */
  async *batches<T extends TableName>(table: T, size: number): AsyncGenerator<Row<T>[]> {
    const cursor = `sg_batches_${table}`;
    await sql`declare ${sql.id(cursor)} no scroll cursor for select * from ${sql.table(table)}`.execute(this.db);
    try {
      for (;;) {
        const { rows } = await sql<Row<T>>`fetch forward ${sql.lit(size)} from ${sql.id(cursor)}`.execute(this.db);
        if (rows.length === 0) return;
        yield rows;
      }
    } finally {
      await sql`close ${sql.id(cursor)}`.execute(this.db);
    }
  }

  /** Every row of a table (rebuild and reconcile). */
  async all<T extends TableName>(table: T): Promise<Row<T>[]> {
    const loose = this.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
    return (await loose.selectFrom(table).selectAll().execute()) as Row<T>[];
  }
}

export type Isolation = "read committed" | "repeatable read" | "serializable";

/** Postgres (or PGlite): the system of record. */
export class Store {
  readonly read: Repositories;

  private constructor(private readonly opened: OpenDatabase) {
    this.read = new Repositories(opened.db);
  }

  static async open(target: DatabaseTarget): Promise<Store> {
    return new Store(await openDatabase(target));
  }

  get kind(): DatabaseTarget["kind"] {
    return this.opened.kind;
  }

  /** PGlite only: a dump of the data directory (tests start from migrated dumps). */
  async dump(): Promise<Blob | undefined> {
    return this.opened.pglite ? ((await this.opened.pglite.dumpDataDir("none")) as Blob) : undefined;
  }

  migrate(): Promise<MigrationReport> {
    return migrateToLatest(this.opened.db, this.opened.schema);
  }

  async transaction<T>(fn: (tx: Repositories) => Promise<T>, isolation: Isolation = "read committed"): Promise<T> {
    try {
      return await this.opened.db
        .transaction()
        .setIsolationLevel(isolation)
        .execute((trx: Transaction<Database>) => fn(new Repositories(trx)));
    } catch (err) {
      throw translateStoreError(err);
    }
  }

  async ping(): Promise<void> {
    try {
      await ping(this.opened.db);
    } catch (err) {
      throw translateStoreError(err);
    }
  }

  /**
   * Real Postgres: probes reachability on a connection of its own; the
   * listener hears every change, and while it is unreachable taking a
   * connection fails at once. PGlite runs in this process: always reachable.
   */
  watchReachability(listener: (reachable: boolean) => void): () => void {
    return this.opened.watchReachability?.(listener) ?? (() => {});
  }

  /** Bounded for real Postgres: connections still in use after a short grace are cut. */
  close(): Promise<void> {
    return this.opened.close();
  }
}
