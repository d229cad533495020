import { existsSync } from "node:fs";

/** The Chromium the console's browser tests drive: CHROMIUM_PATH, else Debian's package. */
export const CHROMIUM_PATH = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
export const chromiumAvailable = existsSync(CHROMIUM_PATH);
export const SKIP_MESSAGE = `browser tests skipped: no Chromium at ${CHROMIUM_PATH}; apt-get install chromium (or set CHROMIUM_PATH)`;
