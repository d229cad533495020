import { accessSync, constants, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * What configuration needs to know about the supervised SpiceDB
 * (SHAREGRAPH_ENGINE=spicedb), without loading the process machinery.
 */

/** The SpiceDB version .ci/build-spicedb builds and docker-compose.yml runs. */
export const SPICEDB_VERSION = "v1.56.2";

/** Where .ci/build-spicedb puts the binary: .spicedb/bin/spicedb at the project root (from src/ and from dist/). */
export const DEFAULT_SPICEDB_BINARY = fileURLToPath(new URL("../../.spicedb/bin/spicedb", import.meta.url));

/** Whether path is an executable regular file. */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const DATABASE_NAME = /^[A-Za-z0-9_-]{1,63}$/;

/** DATABASE_URL with its database name replaced by `<name>_spicedb`: SpiceDB's datastore beside sharegraph's database. */
export function defaultDatastoreUri(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, "")) || decodeURIComponent(url.username) || "postgres";
  url.pathname = `/${encodeURIComponent(`${name}_spicedb`)}`;
  return url.toString();
}

/** The database name of a postgres:// URI; throws unless it is 1-63 letters, digits, _ or -. */
export function databaseNameOf(uri: string): string {
  const url = new URL(uri);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!DATABASE_NAME.test(name)) {
    throw new Error(`the database name ${JSON.stringify(name)} must be 1-63 letters, digits, _ or -`);
  }
  return name;
}
