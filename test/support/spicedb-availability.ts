import { DEFAULT_SPICEDB_BINARY, isExecutableFile } from "../../src/engine/spicedb-config.js";

/**
 * Whether the tests against a REAL SpiceDB server can run here: they need the
 * binary (SPICEDB_BINARY, default .spicedb/bin/spicedb, built by
 * `npm run spicedb:build`) and a Postgres for its datastore
 * (TEST_SPICEDB_DATASTORE_URL, else TEST_DATABASE_URL).
 */
export function realSpiceDbAvailability(): { available: boolean; reason: string; binary: string; datastoreServer: string | undefined } {
  const binary = process.env["SPICEDB_BINARY"] || DEFAULT_SPICEDB_BINARY;
  const datastoreServer = process.env["TEST_SPICEDB_DATASTORE_URL"] || process.env["TEST_DATABASE_URL"] || undefined;
  if (!isExecutableFile(binary)) {
    return { available: false, reason: `no SpiceDB binary at ${binary} (npm run spicedb:build builds it; needs Go)`, binary, datastoreServer };
  }
  if (!datastoreServer) {
    return { available: false, reason: "no Postgres for its datastore (set TEST_DATABASE_URL or TEST_SPICEDB_DATASTORE_URL)", binary, datastoreServer };
  }
  return { available: true, reason: "", binary, datastoreServer };
}
