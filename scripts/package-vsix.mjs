#!/usr/bin/env node
// `npm run package [-- --target T] [-- --if-stale]`: builds the production bundles and
// packages one VSIX per platform, layerlens-<version>-<target>.vsix, with @vscode/vsce (v3:
// it runs on the project's Node 20; v4 needs Node 22). Each holds onnxruntime-node with only
// its own platform's native binaries (a webpack external loaded at run time): the ignore file
// is .vscodeignore plus that one binary folder. Each VSIX is read back and checked: the
// bundles, the media, the manifest, its binaries and no other platform's.
// `--target T` packages one platform; `--if-stale` skips packaging when the VSIX is newer
// than every source it is built from (`npm start` and the end-to-end tests use both).
// Prints the path of each VSIX on standard output.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** VS Code's platform targets, each with its onnxruntime-node binary folder. */
export const TARGETS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};
const BINARIES_ROOT = 'node_modules/onnxruntime-node/bin/napi-v6/';
/** Runtime packages allowed under node_modules in the VSIX (everything else is bundled). */
const SHIPPED_PACKAGES = ['onnxruntime-node', 'onnxruntime-common'];
/** The binding every platform's binary folder holds. */
const BINDING = 'onnxruntime_binding.node';
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
  'extension/dist/ggmlWorker.js',
  'extension/dist/wasm/ggml.wasm',
  'extension/dist/cli.js',
  'extension/dist/webview/main.js',
  'extension/dist/webview/graphLayout.js',
  'extension/dist/webview/diff.js',
  'extension/dist/webview/report.js',
  'extension/media/layerlens.css',
  'extension/dist/web-tree-sitter.wasm',
  'extension/dist/tree-sitter-python.wasm',
  'extension/node_modules/onnxruntime-node/package.json',
  'extension/node_modules/onnxruntime-node/dist/index.js',
  'extension/node_modules/onnxruntime-common/package.json',
  'extension/node_modules/onnxruntime-common/dist/cjs/index.js',
];
/** What goes into a VSIX: when any of it is newer than the VSIX, the VSIX is stale. */
const VSIX_SOURCES = [
  'src',
  'webview-ui/src',
  'media',
  'package.json',
  'README.md',
  'webpack.config.js',
  '.vscodeignore',
  'scripts/package-vsix.mjs',
];

/** The VS Code target of this machine (the VSIX `npm start` and the tests install). */
export function hostTarget() {
  const target = `${process.platform}-${process.arch}`;
  if (!(target in TARGETS)) throw new PackagingError(`no VSIX target for ${target}`);
  return target;
}

/** The binary folder of `target` inside a VSIX. */
function binariesOf(target) {
  return `extension/${BINARIES_ROOT}${TARGETS[target]}/`;
}

class PackagingError extends Error {}

export function vsixPath(target = hostTarget()) {
  const { version } = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8'));
  return path.join(projectRoot, `layerlens-${version}-${target}.vsix`);
}

function newestChange(entry) {
  const absolute = path.join(projectRoot, entry);
  if (!existsSync(absolute)) return 0;
  const stat = statSync(absolute);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(
    stat.mtimeMs,
    ...readdirSync(absolute, { recursive: true }).map(
      (name) => statSync(path.join(absolute, name)).mtimeMs,
    ),
  );
}

/** Whether the VSIX of `target` exists and is newer than every source it is built from. */
export function isFresh(target) {
  const vsix = vsixPath(target);
  if (!existsSync(vsix)) return false;
  const builtAt = statSync(vsix).mtimeMs;
  return VSIX_SOURCES.every((entry) => newestChange(entry) <= builtAt);
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

/**
 * Problems with the content of `target`'s VSIX; empty when it holds what it should (its
 * own onnxruntime binaries among them) and nothing else.
 */
export function checkVsixEntries(names, target) {
  const problems = [];
  const binaries = binariesOf(target);
  for (const required of [...REQUIRED_ENTRIES, `${binaries}${BINDING}`]) {
    if (!names.includes(required)) problems.push(`missing ${required}`);
  }
  for (const name of names) {
    const packageMatch = /^extension\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(name);
    if (packageMatch && !SHIPPED_PACKAGES.includes(packageMatch[1])) {
      problems.push(`${name}: ${packageMatch[1]} is bundled by webpack and must not ship`);
    }
    if (name.includes('/onnxruntime-node/bin/') && !name.startsWith(binaries)) {
      problems.push(`${name}: not a ${target} binary`);
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

/** .vscodeignore with `target`'s binary folder let in, written where vsce can read it. */
function ignoreFileFor(target) {
  const folder = path.join(projectRoot, '.tmp');
  mkdirSync(folder, { recursive: true });
  const file = path.join(folder, `vscodeignore-${target}`);
  const base = readFileSync(path.join(projectRoot, '.vscodeignore'), 'utf8');
  writeFileSync(file, `${base}!${BINARIES_ROOT}${TARGETS[target]}/**\n`);
  return file;
}

/** Builds (unless `build` is false) and packages `target`'s VSIX; returns its path, entries and size. */
export function packageVsix({
  log = (line) => console.error(`package: ${line}`),
  build = true,
  target = hostTarget(),
} = {}) {
  if (build) run('npx', ['--no-install', 'webpack', '--mode', 'production'], log);
  const out = vsixPath(target);
  const vsceArgs = [
    path.join(projectRoot, 'node_modules', '@vscode', 'vsce', 'vsce'),
    'package',
    '--target',
    target,
    '--ignoreFile',
    ignoreFileFor(target),
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
  const problems = checkVsixEntries(names, target);
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

/** `npm start` and the end-to-end tests: this machine's VSIX, packaged only when stale. */
export function ensureHostVsix({ log } = {}) {
  const target = hostTarget();
  if (isFresh(target)) return vsixPath(target);
  return packageVsix({ log, target }).vsix;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const at = process.argv.indexOf('--target');
    const targets = at >= 0 ? [process.argv[at + 1]] : Object.keys(TARGETS);
    const unknown = targets.filter((target) => !(target in TARGETS));
    if (unknown.length > 0) {
      throw new PackagingError(
        `unknown target ${unknown.join(', ')}; targets: ${Object.keys(TARGETS).join(', ')}`,
      );
    }
    const stale = process.argv.includes('--if-stale')
      ? targets.filter((target) => !isFresh(target))
      : targets;
    let build = !process.argv.includes('--no-build');
    for (const target of stale) {
      packageVsix({ target, build });
      build = false;
    }
    // Standard output: the path of each VSIX asked for, one a line (the log is on stderr).
    for (const target of targets) console.log(vsixPath(target));
  } catch (error) {
    console.error(`package: FAILED: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}
