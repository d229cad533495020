// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "src/gen/", "node_modules/", "coverage/", ".sharegraph/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": ["error", { allow: ["error"] }],
    },
  },
  {
    // JavaScript files are type-checked (checkJs), which also catches undefined names, Node's globals included.
    files: ["**/*.js"],
    rules: { "no-undef": "off" },
  },
  {
    files: ["bench/**", "test/**", "src/main.ts", "src/store/migrate-cli.ts"],
    rules: { "no-console": "off" },
  },
);
