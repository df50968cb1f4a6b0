#!/usr/bin/env node
// `npm run package`: builds the production bundles and packages layerlens-<version>.vsix for
// linux-x64 with @vscode/vsce (v3: it runs on the project's Node 20; v4 needs Node 22).
// Then it reads the VSIX back and checks what went in: the bundles, the media, the manifest,
// and onnxruntime-node with only its linux-x64 binaries (a webpack external loaded at run time).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = 'linux-x64';
/** The one onnxruntime-node binary folder that belongs in a linux-x64 VSIX. */
const ONNXRUNTIME_BINARIES = 'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/';
/** Runtime packages allowed under node_modules in the VSIX (everything else is bundled). */
const SHIPPED_PACKAGES = ['onnxruntime-node', 'onnxruntime-common'];
const REQUIRED_ENTRIES = [
  'extension/package.json',
  'extension/dist/extension.js',
  'extension/dist/server.js',
  'extension/dist/statsWorker.js',
  'extension/dist/heatmapWorker.js',
  'extension/dist/spectrumWorker.js',
  'extension/dist/wasm/stats.wasm',
  'extension/dist/wasm/bandReduction.wasm',
  'extension/dist/wasm/quantize.wasm',
  'extension/dist/wasm/lossless.wasm',
  'extension/dist/compressWorker.js',
  'extension/dist/losslessWorker.js',
  'extension/dist/cli.js',
  'extension/dist/webview/main.js',
  'extension/dist/web-tree-sitter.wasm',
  'extension/dist/tree-sitter-python.wasm',
  'extension/node_modules/onnxruntime-node/package.json',
  'extension/node_modules/onnxruntime-node/dist/index.js',
  `${ONNXRUNTIME_BINARIES}onnxruntime_binding.node`,
  'extension/node_modules/onnxruntime-common/package.json',
  'extension/node_modules/onnxruntime-common/dist/cjs/index.js',
];

class PackagingError extends Error {}

export function vsixPath() {
  const { version } = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8'));
  return path.join(projectRoot, `layerlens-${version}.vsix`);
}

function run(command, args, log) {
  log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: projectRoot, stdio: 'inherit' });
  if (result.error) throw new PackagingError(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0) {
    throw new PackagingError(`${command} ${args.join(' ')} failed (exit status ${result.status})`);
  }
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_DIRECTORY_ENTRY = 0x02014b50;

/** Lists a zip file's entries (name, uncompressed and compressed size) from its central directory. */
export function listZipEntries(file) {
  const bytes = readFileSync(file);
  // The end record sits in the last 22 bytes plus at most a 64 KiB comment.
  const searchFrom = Math.max(0, bytes.length - 22 - 0xffff);
  let end = -1;
  for (let i = bytes.length - 22; i >= searchFrom; i--) {
    if (bytes.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new PackagingError(`${file} is not a zip file (no end of central directory)`);
  const entryCount = bytes.readUInt16LE(end + 10);
  let offset = bytes.readUInt32LE(end + 16);
  const entries = [];
  for (let i = 0; i < entryCount; i++) {
    if (offset + 46 > bytes.length || bytes.readUInt32LE(offset) !== CENTRAL_DIRECTORY_ENTRY) {
      throw new PackagingError(`${file}: damaged central directory at entry ${i}`);
    }
    const compressedSize = bytes.readUInt32LE(offset + 20);
    const size = bytes.readUInt32LE(offset + 24);
    const nameLength = bytes.readUInt16LE(offset + 28);
    const extraLength = bytes.readUInt16LE(offset + 30);
    const commentLength = bytes.readUInt16LE(offset + 32);
    const name = bytes.toString('utf8', offset + 46, offset + 46 + nameLength);
    entries.push({ name, size, compressedSize });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** Problems with the VSIX's content; empty when it holds what it should and nothing else. */
export function checkVsixEntries(names) {
  const problems = [];
  for (const required of REQUIRED_ENTRIES) {
    if (!names.includes(required)) problems.push(`missing ${required}`);
  }
  for (const name of names) {
    const packageMatch = /^extension\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(name);
    if (packageMatch && !SHIPPED_PACKAGES.includes(packageMatch[1])) {
      problems.push(`${name}: ${packageMatch[1]} is bundled by webpack and must not ship`);
    }
    if (name.includes('/onnxruntime-node/bin/') && !name.startsWith(ONNXRUNTIME_BINARIES)) {
      problems.push(`${name}: not a ${TARGET} binary`);
    }
    if (/^extension\/(src|test|webview-ui|scripts|example|bench)\//.test(name)) {
      problems.push(`${name}: sources and tests stay out of the VSIX`);
    }
  }
  return problems;
}

function formatMiB(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Builds and packages the VSIX; returns its path, entries and size. */
export function packageVsix({
  log = (line) => console.error(`package: ${line}`),
  build = true,
} = {}) {
  if (build) run('npx', ['--no-install', 'webpack', '--mode', 'production'], log);
  const out = vsixPath();
  const vsceArgs = [
    path.join(projectRoot, 'node_modules', '@vscode', 'vsce', 'vsce'),
    'package',
    '--target',
    TARGET,
    '--out',
    out,
    '--allow-missing-repository',
    // README images stay relative: VS Code resolves them inside the installed extension.
    '--no-rewrite-relative-links',
  ];
  if (
    !['LICENSE', 'LICENSE.md', 'LICENSE.txt'].some((name) =>
      existsSync(path.join(projectRoot, name)),
    )
  ) {
    vsceArgs.push('--skip-license');
  }
  run(process.execPath, vsceArgs, log);

  const entries = listZipEntries(out);
  const names = entries.map((entry) => entry.name);
  const problems = checkVsixEntries(names);
  if (problems.length > 0) {
    throw new PackagingError(`${path.basename(out)} is not right:\n  ${problems.join('\n  ')}`);
  }
  const bytes = statSync(out).size;
  const unpacked = entries.reduce((total, entry) => total + entry.size, 0);
  const byFolder = new Map();
  for (const entry of entries) {
    const parts = entry.name.split('/');
    const depth = entry.name.startsWith('extension/node_modules/') ? 3 : 2;
    const folder = parts.length > depth ? parts.slice(0, depth).join('/') : entry.name;
    byFolder.set(folder, (byFolder.get(folder) ?? 0) + entry.size);
  }
  log(
    `${path.relative(process.cwd(), out)}: ${formatMiB(bytes)} (${formatMiB(unpacked)} unpacked), ${entries.length} files`,
  );
  for (const [folder, size] of [...byFolder].sort((a, b) => b[1] - a[1])) {
    log(`  ${formatMiB(size).padStart(9)}  ${folder}`);
  }
  return { vsix: out, bytes, entries };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    packageVsix({ build: !process.argv.includes('--no-build') });
  } catch (error) {
    console.error(`package: FAILED: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}
