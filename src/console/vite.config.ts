import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/**
 * The admin console (issue 11): built by `npm run build` (and `npm start`
 * when stale, scripts/build-if-stale.js) into <root>/dist/console, served
 * by the server itself at /console/ (src/api/console-assets.ts). The
 * generated clients in src/gen import with ".js" specifiers; Vite resolves
 * those to the ".ts" files from TypeScript importers.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL("../../dist/console", import.meta.url)),
    emptyOutDir: true,
    // No inline scripts or data: modules: the Content-Security-Policy allows 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
    // React, react-query and the protobuf runtime make one ~400 kB chunk; no code-splitting needed for an admin tool.
    chunkSizeWarningLimit: 1000,
  },
  logLevel: "warn",
});
