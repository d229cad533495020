import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../src/config.js";
import { SPICEDB_VERSION } from "../../src/engine/spicedb-config.js";

/*
 * Docker does not run where sharegraph is developed, so the production shape
 * in docker-compose.yml is checked by reading it: the services exist, their
 * credentials and addresses agree, and the gateway's environment passes
 * sharegraph's own configuration validation.
 */

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  healthcheck?: unknown;
}

const compose = parse(readFileSync(new URL("../../docker-compose.yml", import.meta.url), "utf8")) as { services: Record<string, Service> };
const services = compose.services;
const env = (name: string) => services[name]?.environment ?? {};

describe("docker-compose.yml", () => {
  it("has Postgres, SpiceDB (migrate + serve on its Postgres datastore) and the gateway", () => {
    expect(Object.keys(services).sort()).toEqual(["postgres", "sharegraph", "spicedb", "spicedb-migrate", "spicedb-postgres"]);
    expect(services["spicedb-migrate"]?.command).toEqual(["datastore", "migrate", "head"]);
    expect(services["spicedb"]?.command).toEqual(["serve"]);
    expect(services["sharegraph"]?.build).toBe(".");
  });

  it("issue 8: runs the SpiceDB version that .ci/build-spicedb builds for the supervised engine", () => {
    const script = readFileSync(new URL("../../.ci/build-spicedb", import.meta.url), "utf8");
    expect(/^VERSION=(v\d+\.\d+\.\d+)$/m.exec(script)?.[1]).toBe(SPICEDB_VERSION);
    expect(services["spicedb"]?.image).toBe(`authzed/spicedb:${SPICEDB_VERSION}`);
    expect(services["spicedb-migrate"]?.image).toBe(`authzed/spicedb:${SPICEDB_VERSION}`);
  });

  it("points SpiceDB and its migration at the SpiceDB Postgres, with its credentials", () => {
    const db = env("spicedb-postgres");
    const uri = `postgres://${db["POSTGRES_USER"]}:${db["POSTGRES_PASSWORD"]}@spicedb-postgres:5432/${db["POSTGRES_DB"]}?sslmode=disable`;
    for (const name of ["spicedb", "spicedb-migrate"]) {
      expect(env(name)["SPICEDB_DATASTORE_ENGINE"]).toBe("postgres");
      expect(env(name)["SPICEDB_DATASTORE_CONN_URI"]).toBe(uri);
    }
  });

  it("points the gateway at its Postgres and at SpiceDB's gRPC port with SpiceDB's key", () => {
    const db = env("postgres");
    const gw = env("sharegraph");
    expect(gw["DATABASE_URL"]).toBe(`postgres://${db["POSTGRES_USER"]}:${db["POSTGRES_PASSWORD"]}@postgres:5432/${db["POSTGRES_DB"]}`);
    const grpcPort = env("spicedb")["SPICEDB_GRPC_ADDR"]?.split(":").at(-1);
    expect(gw["SPICEDB_ENDPOINT"]).toBe(`spicedb:${grpcPort}`);
    expect(gw["SPICEDB_TOKEN"]).toBe(env("spicedb")["SPICEDB_GRPC_PRESHARED_KEY"]);
  });

  it("starts things in order: migrations before SpiceDB, databases healthy before their users", () => {
    expect(services["spicedb-migrate"]?.depends_on?.["spicedb-postgres"]?.condition).toBe("service_healthy");
    expect(services["spicedb"]?.depends_on?.["spicedb-migrate"]?.condition).toBe("service_completed_successfully");
    expect(services["sharegraph"]?.depends_on?.["postgres"]?.condition).toBe("service_healthy");
    // Issue 10: the gateway waits for SpiceDB to answer its gRPC health, not just for its container.
    expect(services["sharegraph"]?.depends_on?.["spicedb"]?.condition).toBe("service_healthy");
    expect(services["spicedb"]?.healthcheck).toMatchObject({ test: ["CMD", "grpc_health_probe", `-addr=localhost:${env("spicedb")["SPICEDB_GRPC_ADDR"]?.split(":").at(-1)}`] });
    expect(services["postgres"]?.healthcheck).toBeDefined();
    expect(services["spicedb-postgres"]?.healthcheck).toBeDefined();
  });

  it("gives the gateway an environment that sharegraph's config accepts, listening on the published port", () => {
    const config = loadConfig(env("sharegraph"));
    expect(config.database.kind).toBe("postgres");
    expect(config.spicedb).toMatchObject({ kind: "remote", endpoint: "spicedb:50051", tls: "plaintext" });
    expect(config.apiKeys?.map((k) => k.scope).sort()).toEqual(["admin", "check"]);
    expect(config.addr.host).toBe("0.0.0.0");
    expect(services["sharegraph"]?.ports).toContain(`127.0.0.1:${config.addr.port}:${config.addr.port}`);
  });
});

describe("Dockerfile", () => {
  const dockerfile = readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8");

  it("builds with the project's Node major and runs the built server with the schema beside it", () => {
    const major = process.versions.node.split(".")[0];
    expect(dockerfile).toMatch(new RegExp(`^FROM node:${major}-`, "m"));
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/COPY --from=build \/app\/schema \.\/schema/);
    expect(dockerfile).toMatch(/CMD \["node", "dist\/main\.js"\]/);
    expect(dockerfile).toMatch(/HEALTHCHECK .*\/healthz/);
  });

  it("issue 10: the image listens on 0.0.0.0 and its data directory is writable by the user it runs as", () => {
    const runtime = dockerfile.slice(dockerfile.lastIndexOf("FROM "));
    const envs = Object.fromEntries([...runtime.matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/).map((kv) => kv.split("=") as [string, string])));
    expect(loadConfig({ SHAREGRAPH_ADDR: envs["SHAREGRAPH_ADDR"] }).addr.host).toBe("0.0.0.0");
    const dataDir = envs["SHAREGRAPH_DATA_DIR"]!;
    expect(dataDir).toMatch(/^\//);
    const user = /^USER (\S+)$/m.exec(runtime)?.[1];
    expect(user).toBe("node");
    // Created and handed to that user before the image switches to it.
    const chown = runtime.indexOf(`chown ${user}:${user} ${dataDir}`);
    expect(chown).toBeGreaterThan(0);
    expect(chown).toBeLessThan(runtime.indexOf(`USER ${user}`));
  });
});
