import type { Kysely } from "kysely";
import type { Database } from "./database.js";

/** The deployment's server key (see src/secrets.ts), kept in Postgres so that every gateway shares it. */
export class ServerKeysRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * The master key. Migration 0005 generates it; should the row be gone, the
   * first gateway to ask generates a new one (`generate`) and every other one
   * reads the winner's (on conflict do nothing), so gateways never disagree.
   */
  async master(generate: () => string): Promise<Buffer> {
    const read = () => this.db.selectFrom("server_keys").select("secret").where("name", "=", "master").executeTakeFirst();
    let row = await read();
    if (!row) {
      await this.db.insertInto("server_keys").values({ name: "master", secret: generate() }).onConflict((oc) => oc.column("name").doNothing()).execute();
      row = await read();
    }
    if (!row) throw new Error("the server key could not be read or created");
    return Buffer.from(row.secret, "base64url");
  }
}
