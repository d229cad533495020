import { readFile, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { NodeRequest, NodeResponse } from "./front-door.js";

/*
 * The admin console's static files (issue 11), served on the API's port at
 * /console/ without an API key: they are the same for everyone and carry no
 * data; every call the console makes goes through the front door with the
 * operator's key, like a grpcurl call. `/` redirects to /console/.
 *
 * Only GET and HEAD; a path is decoded once and refused (404) if any segment
 * is empty or starts with "." (".", "..", dotfiles), or it holds a backslash, a NUL or a control character, so
 * nothing outside the directory can be named; what is served is resolved
 * and checked to be inside it again. Unknown paths without an extension are
 * the single-page app's own routes (index.html); unknown files are 404.
 */

/** Where `npm run build` (vite, src/console/vite.config.ts) writes the console: <root>/dist/console (the same from src/api and dist/api). */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL("../../dist/console/", import.meta.url));

export const CONSOLE_PATH = "/console/";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Sent with every answer under /console/ (files, fallbacks, refusals). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** Vite's content-hashed files (assets/name-<hash>.js) never change under their name. */
const IMMUTABLE = "public, max-age=31536000, immutable";

export type ConsoleAssets = (req: NodeRequest, res: NodeResponse) => Promise<boolean>;

/**
 * A handler for `/`, `/console` and `/console/…` that answers and returns
 * true, or returns false for any other path (the caller answers those).
 */
export function consoleAssets(dir: string = DEFAULT_CONSOLE_DIR): ConsoleAssets {
  const root = resolve(dir);
  return async (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    if (path === "/" || path === "/console") {
      if (!allowedMethod(req, res)) return true;
      send(req, res, 308, "text/plain; charset=utf-8", `see ${CONSOLE_PATH}\n`, "no-cache", { location: CONSOLE_PATH });
      return true;
    }
    if (!path.startsWith(CONSOLE_PATH)) return false;
    if (!allowedMethod(req, res)) return true;
    const relative = safeRelative(path.slice(CONSOLE_PATH.length));
    if (relative === undefined) {
      send(req, res, 404, "text/plain; charset=utf-8", "not found\n", "no-store");
      return true;
    }
    const index = join(root, "index.html");
    if (!(await isFile(index))) {
      send(req, res, 503, "text/plain; charset=utf-8", `the console is not built: run \`npm run build\` (it writes ${root})\n`, "no-store");
      return true;
    }
    let file = relative === "" ? index : resolve(root, relative);
    if (file !== index && !file.startsWith(root + sep)) {
      send(req, res, 404, "text/plain; charset=utf-8", "not found\n", "no-store");
      return true;
    }
    if (!(await isFile(file))) {
      // A client route (#/… needs none, but /console/access does): the app. A missing file with an extension is a 404.
      if (extname(relative) !== "") {
        send(req, res, 404, "text/plain; charset=utf-8", "not found\n", "no-store");
        return true;
      }
      file = index;
    }
    const body = await readFile(file);
    const type = TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
    const cache = file === index ? "no-cache" : relative.startsWith("assets/") ? IMMUTABLE : "no-cache";
    send(req, res, 200, type, body, cache);
    return true;
  };
}

function allowedMethod(req: NodeRequest, res: NodeResponse): boolean {
  if (req.method === "GET" || req.method === "HEAD") return true;
  res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
  res.end(`${req.method ?? "this method"} is not allowed here: the console's files are read with GET\n`);
  return false;
}

function send(req: NodeRequest, res: NodeResponse, status: number, type: string, body: string | Buffer, cache: string, extra: Record<string, string> = {}): void {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { "content-type": type, "content-length": String(bytes.length), "cache-control": cache, ...SECURITY_HEADERS, ...extra });
  if (req.method === "HEAD") res.end();
  else res.end(bytes);
}

/**
 * The request path below /console/, decoded, as a relative file path; or
 * undefined when it could name something outside the directory (".", "..",
 * empty segments, backslashes, NUL and other control characters, bad
 * percent-encoding).
 */
export function safeRelative(raw: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(decoded) || decoded.includes(":")) return undefined;
  if (decoded === "") return "";
  const segments = decoded.split("/");
  // A trailing slash (a client route like /console/access/) is allowed; nothing else may be empty.
  if (segments.at(-1) === "") segments.pop();
  // No ".", "..", and no dotfiles (the build stamp) either.
  if (segments.some((s) => s === "" || s.startsWith("."))) return undefined;
  return segments.join("/");
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
