// Builds static-token.js into a WebAssembly component with componentize-js's API.
//
//   node build.mjs OUTPUT.wasm
//
// `jco componentize` fails on this machine ("failed to get path metadata (os error 44)");
// the `componentize()` API works when the WIT files are under the working directory, so
// this script runs from the repository root and names `wit/` relative to it.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { componentize, version } from '@bytecodealliance/componentize-js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const output = path.resolve(process.argv[2] ?? path.join(root, 'plugins/target/foreign/js-static-token.wasm'));

process.chdir(root);
const started = performance.now();
const { component } = await componentize({
  sourcePath: path.relative(root, path.join(here, 'static-token.js')),
  witPath: 'wit',
  worldName: 'token-provider',
  // The plugin needs clocks (Date.now for ttl_ms) and stdio (uncaught errors go to
  // stderr, which the host logs). It makes no HTTP requests and serves none.
  disableFeatures: ['http', 'fetch-event'],
});
await mkdir(path.dirname(output), { recursive: true });
await writeFile(output, component);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  `componentize-js ${version}: ${path.relative(root, output)} ` +
    `(${(component.length / 1e6).toFixed(1)} MB) in ${seconds} s`,
);
