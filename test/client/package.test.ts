/**
 * The tlog-worm-client package, installed from its tarball into empty projects the way a user
 * installs it (offline, from the npm cache that `npm ci` filled): a verifier gets the client and
 * @noble/* and nothing else, the README's examples run as written against a tlog-worm service
 * (the verifier's and the writer's), and they type-check against the package's declarations.
 * The same install resolved against the registry is test/client/package-registry.test.ts (heavy).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_PACKAGE_NAME } from '../../src/client/package/build.js';
import { fetchCheckpoint, proveInclusion } from '../../src/client/verify.js';
import { urlSource } from '../../src/client/source.js';
import { formatVerifierKey, SignatureType } from '../../src/note/keys.js';
import { clientKey, get, listen, makeEnv, post, tokenAuth, type AppEnv, type Listening } from '../http/helpers.js';
import { installedPackages, jsBlocksImporting, node, offlineProject, packClient, treeBytes, type PackedClient, type Run } from './package-helpers.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { repoRoot } from '../helpers/dist.js';

const README = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const PACKAGE_README = readFileSync(path.join(repoRoot, 'src/client/package/README.md'), 'utf8');
const [VERIFIER_EXAMPLE] = jsBlocksImporting(README, CLIENT_PACKAGE_NAME);
const [WRITER_EXAMPLE] = jsBlocksImporting(README, `${CLIENT_PACKAGE_NAME}/signed-request`);

/** The README's placeholders, and the only text of an example a test replaces. */
const URL_PLACEHOLDER = 'https://log.example/default';
const VKEY_PLACEHOLDER = 'example.com/log+1234abcd+A...';
const ORIGIN = 'example.com/log';

function asWritten(example: string, replacements: Record<string, string>): string {
  let code = example;
  for (const [from, to] of Object.entries(replacements)) {
    expect(code).toContain(from);
    code = code.split(from).join(to);
  }
  return code;
}

const lockVersion = (name: string): string => {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  return lock.packages[`node_modules/${name}`]!.version;
};

let dir: string;
let client: PackedClient;
let verifierDir: string;
let writerDir: string;

beforeAll(() => {
  dir = makeTempDir('tlog-client-package-');
  client = packClient(dir);
  verifierDir = path.join(dir, 'verifier');
  writerDir = path.join(dir, 'writer');
  const installed = (who: string, r: Run) => {
    if (r.status === 0) return;
    const hint = /ENOTCACHED/.test(r.stderr) ? ' (the npm cache lacks a package of package-lock.json: `npm ci` fills it)' : '';
    throw new Error(`npm ci --offline of the ${who}'s project failed${hint}: ${r.stderr}`);
  };
  installed('verifier', offlineProject(verifierDir, client));
  const pinned = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  installed('writer', offlineProject(writerDir, client, { 'http-message-signatures': pinned.dependencies['http-message-signatures']! }));
}, 240_000);
afterAll(() => removeDir(dir));

describe('what a verifier installs', () => {
  it('the client and @noble/* at the locked versions, nothing else, in a few MB', () => {
    const installed = installedPackages(verifierDir);
    expect(installed).toEqual(
      [
        `${CLIENT_PACKAGE_NAME}@${client.manifest.version}`,
        ...['@noble/ciphers', '@noble/curves', '@noble/hashes', '@noble/post-quantum'].map((n) => `${n}@${lockVersion(n)}`),
      ].sort(),
    );
    const bytes = treeBytes(path.join(verifierDir, 'node_modules'));
    console.log(`a verifier installs ${installed.length} packages, ${(bytes / 1e6).toFixed(2)} MB: ${installed.join(', ')}`);
    // The server's dependencies (hono, pino, koffi, the AWS SDK, sigstore...) are tens of MB.
    expect(bytes).toBeLessThan(5_000_000);
  });

  it('the package holds compiled modules and their declarations: no sources, maps or server modules', () => {
    expect(client.files).toContain('client/index.js');
    expect(client.files).toContain('client/index.d.ts');
    expect(client.files).toContain('client/signed-request.js');
    expect(client.files.filter((f) => !/\.(js|d\.ts)$/.test(f))).toEqual(['README.md', 'package.json']);
    expect(client.files.filter((f) => /^(log|http|cli|tenants|config|anchor|cluster|index)\//.test(f))).toEqual([]);
    expect(client.manifest.dependencies).toEqual({ '@noble/curves': lockVersion('@noble/curves'), '@noble/post-quantum': lockVersion('@noble/post-quantum') });
  });

  it('the signer subpath, without http-message-signatures, fails naming it; the verifier entry does not need it', async () => {
    const signer = await node(['--input-type=module', '-e', `await import('${CLIENT_PACKAGE_NAME}/signed-request')`], verifierDir);
    expect(signer.status).not.toBe(0);
    expect(signer.stderr).toMatch(/ERR_MODULE_NOT_FOUND/);
    expect(signer.stderr).toMatch(/Cannot find package 'http-message-signatures'/);
    const verifier = await node(
      ['--input-type=module', '-e', `const m = await import('${CLIENT_PACKAGE_NAME}'); console.log(typeof m.Monitor, typeof m.signHttpRequest)`],
      verifierDir,
    );
    expect(verifier.stderr).toBe('');
    expect(verifier.stdout).toBe('function undefined\n');
    // Nothing but the exported subpaths.
    const deep = await node(['--input-type=module', '-e', `await import('${CLIENT_PACKAGE_NAME}/merkle/hash.js')`], verifierDir);
    expect(deep.stderr).toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });
});

/** A tlog-worm service with one tenant, "default" with origin example.com/log, on a loopback port. */
function service(auth: Parameters<typeof tokenAuth>[0]) {
  const s = { env: undefined as unknown as AppEnv, server: undefined as unknown as Listening, base: '' };
  beforeAll(async () => {
    s.env = await makeEnv([{ name: 'default', origin: ORIGIN, auth: tokenAuth(auth) }]);
    s.server = await listen(s.env.app);
    s.base = `http://127.0.0.1:${s.server.port}`;
  });
  afterAll(async () => {
    await s.server.close();
    await s.env.close();
  });
  return s;
}
const vkeysOf = async (env: AppEnv) => (await (await get(env.app, '/default/vkeys')).text()).trim().split('\n');

it('the package README shows the same examples as README.md', () => {
  expect(VERIFIER_EXAMPLE).toBeDefined();
  expect(WRITER_EXAMPLE).toBeDefined();
  expect(jsBlocksImporting(PACKAGE_README, CLIENT_PACKAGE_NAME)).toEqual([VERIFIER_EXAMPLE]);
  expect(jsBlocksImporting(PACKAGE_README, `${CLIENT_PACKAGE_NAME}/signed-request`)).toEqual([WRITER_EXAMPLE]);
  expect(readFileSync(path.join(verifierDir, 'node_modules', CLIENT_PACKAGE_NAME, 'README.md'), 'utf8')).toBe(PACKAGE_README);
});

describe("the README's verifier example, as written, against a tlog-worm service", () => {
  const s = service({ tokens: ['t'] });
  const append = async (text: string) => expect((await post(s.env.app, '/default/append', text, { authorization: 'Bearer t' })).status).toBe(200);

  it('verifies the checkpoint and a proof, and its monitor streams each entry once across runs', async () => {
    for (const e of ['hello', 'a', 'b', 'c']) await append(e);
    const vkeys = await vkeysOf(s.env);
    writeFileSync(
      path.join(verifierDir, 'verify.mjs'),
      asWritten(VERIFIER_EXAMPLE!, { [URL_PLACEHOLDER]: `${s.base}/default`, [VKEY_PLACEHOLDER]: vkeys[0]! }),
    );
    const run = async () => {
      const r = await node(['verify.mjs'], verifierDir);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return r.stdout;
    };
    expect(await run()).toBe(`${ORIGIN}: 4 entries\nentry 0: 5 bytes, proof of 2 hashes\nentry 0: hello\nentry 1: a\nentry 2: b\nentry 3: c\n`);
    // monitor.json holds the checkpoint accepted: nothing new, nothing streamed again.
    expect(await run()).toBe(`${ORIGIN}: 4 entries\nentry 0: 5 bytes, proof of 2 hashes\n`);
    await append('d');
    expect(await run()).toBe(`${ORIGIN}: 5 entries\nentry 0: 5 bytes, proof of 3 hashes\nentry 4: d\n`);
  });

  it('refuses a log signed with other keys', async () => {
    // A well-formed Ed25519 verifier key with the log's name that is not the log's.
    const vkey = formatVerifierKey({ name: ORIGIN, type: SignatureType.ed25519, publicKey: clientKey(1).publicKey });
    writeFileSync(path.join(verifierDir, 'wrong-key.mjs'), asWritten(VERIFIER_EXAMPLE!, { [URL_PLACEHOLDER]: `${s.base}/default`, [VKEY_PLACEHOLDER]: vkey }));
    const r = await node(['wrong-key.mjs'], verifierDir);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/TlogError: http:\/\/127\.0\.0\.1:\d+\/default\/checkpoint: checkpoint has no signature from the log\n/);
  });

  it("type-checks against the package's declarations", () => {
    writeFileSync(path.join(verifierDir, 'verify.mts'), VERIFIER_EXAMPLE!);
    // This repository's TypeScript and Node types; the package's own declarations and @noble's.
    const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
    const args = [
      '--noEmit',
      '--strict',
      '--target',
      'es2022',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--types',
      'node',
      '--typeRoots',
      path.join(repoRoot, 'node_modules/@types'),
      'verify.mts',
    ];
    const r = spawnSync(process.execPath, [tsc, ...args], { cwd: verifierDir, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe("the README's writer example, as written, against a tlog-worm service", () => {
  const writer = clientKey(7);
  const s = service({ clients: [['ci-runner', writer.publicKey]] });

  it('signs an append that the service takes', async () => {
    writeFileSync(path.join(writerDir, 'client.key'), writer.seed);
    writeFileSync(path.join(writerDir, 'write.mjs'), asWritten(WRITER_EXAMPLE!, { [URL_PLACEHOLDER]: `${s.base}/default` }));
    const r = await node(['write.mjs'], writerDir);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('200 0\n');
    const src = urlSource(`${s.base}/default`);
    const cp = await fetchCheckpoint(src, { logKeys: await vkeysOf(s.env), origin: ORIGIN });
    expect(Buffer.from((await proveInclusion(src, cp, 0)).entry).toString()).toBe('hello');
  });

  it('is refused with a key the tenant does not register', async () => {
    writeFileSync(path.join(writerDir, 'client.key'), clientKey(8).seed);
    const r = await node(['write.mjs'], writerDir);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('401 undefined\n');
  });
});

describe("tlog-worm's own exports map", () => {
  it('serves ".", "./client" and "./signed-request", the client the same names as tlog-worm-client, and nothing deeper', async () => {
    const names = async (spec: string, cwd: string) => {
      const r = await node(['--input-type=module', '-e', `console.log(JSON.stringify(Object.keys(await import('${spec}')).sort()))`], cwd);
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as string[];
    };
    const main = await names('tlog-worm', repoRoot);
    const clientNames = await names('tlog-worm/client', repoRoot);
    const signer = await names('tlog-worm/signed-request', repoRoot);
    expect(clientNames).toEqual(await names(CLIENT_PACKAGE_NAME, verifierDir));
    expect(signer).toEqual(await names(`${CLIENT_PACKAGE_NAME}/signed-request`, writerDir));
    expect(clientNames).toContain('urlSource');
    expect(signer).toContain('signHttpRequest');
    expect(main).toEqual([...new Set([...clientNames, 'signHttpRequest', ...main.filter((n) => signer.includes(n))])].sort());
    const deep = await node(['--input-type=module', '-e', "await import('tlog-worm/dist/src/log/log.js')"], repoRoot);
    expect(deep.stderr).toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });
});
