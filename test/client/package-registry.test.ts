/**
 * The tlog-worm-client tarball installed with a plain `npm install`, its dependencies resolved
 * against the npm registry as a user's would be (no lockfile): a verifier gets the client and
 * @noble/* only, a writer adds http-message-signatures and what it needs. Heavy: it needs the
 * network (test/client/package.test.ts installs the same offline, from the npm cache).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLIENT_PACKAGE_NAME } from '../../src/client/package/build.js';
import { installedPackages, node, npm, packClient, treeBytes, type PackedClient } from './package-helpers.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
let client: PackedClient;
beforeAll(() => {
  dir = makeTempDir('tlog-client-registry-');
  client = packClient(dir);
}, 120_000);
afterAll(() => removeDir(dir));

/** An empty project and `npm install <specs>` in it; the names of what it installed. */
function install(name: string, specs: string[]): string[] {
  const project = path.join(dir, name);
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name, version: '0.0.0', private: true, type: 'module' }) + '\n');
  const r = npm(['install', '--ignore-scripts', ...specs], project, 300_000);
  if (r.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed: ${r.stderr}`);
  const installed = installedPackages(project);
  console.log(`${name}: ${installed.length} packages, ${(treeBytes(path.join(project, 'node_modules')) / 1e6).toFixed(2)} MB: ${installed.join(', ')}`);
  return installed.map((p) => p.slice(0, p.lastIndexOf('@')));
}

it('a verifier installs the client and @noble/* from the registry, nothing else', async () => {
  expect(install('verifier', [client.tarball])).toEqual(['@noble/ciphers', '@noble/curves', '@noble/hashes', '@noble/post-quantum', CLIENT_PACKAGE_NAME]);
  const r = await node(
    [
      '--input-type=module',
      '-e',
      `const m = await import('${CLIENT_PACKAGE_NAME}'); console.log(typeof m.fetchCheckpoint, typeof m.urlSource, typeof m.Monitor)`,
    ],
    path.join(dir, 'verifier'),
  );
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('function function function\n');
}, 300_000);

it('a writer installs http-message-signatures beside it, and the signer loads', async () => {
  expect(
    install('writer', [client.tarball, 'http-message-signatures@' + client.manifest.peerDependencies!['http-message-signatures']!.replace(/^\^/, '')]),
  ).toEqual(
    ['@noble/ciphers', '@noble/curves', '@noble/hashes', '@noble/post-quantum', 'http-message-signatures', 'structured-headers', CLIENT_PACKAGE_NAME].sort(),
  );
  const r = await node(
    ['--input-type=module', '-e', `const m = await import('${CLIENT_PACKAGE_NAME}/signed-request'); console.log(typeof m.signHttpRequest)`],
    path.join(dir, 'writer'),
  );
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('function\n');
}, 300_000);
