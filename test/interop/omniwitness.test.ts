/**
 * Interop of our log with a third-party witness (issue 5): omniwitness of
 * github.com/transparency-dev/witness (cmd/omniwitness, pinned in ../go-omniwitness/go.mod)
 * cosigns our log's checkpoints on loopback, and our log verifies the cosignatures and publishes
 * them, through the Cosigner in-process and through `tlog serve --config`.
 *
 * omniwitness is given two keys: Ed25519 (its cosignatures are cosignature/v1, type 0x04) and
 * ML-DSA-44 (subtree/v1, type 0x06). It reads them as x/mod `PRIVATE+KEY+name+id+base64(type ||
 * seed)` files, which our note/keys.ts writes. Its cosignatures verify under the 0x04 and 0x06
 * vkeys of those keys, never the 0x01 one.
 *
 * Building it: the witness module requires github.com/transparency-dev/merkle at a pseudo-version
 * the Go module proxy refuses (403), so the build runs in a temporary directory with a replace to
 * merkle v0.0.2 (from the proxy) plus a stub proof.VerifySubtreeConsistency written here; only
 * the sign-subtree endpoint uses it, and omniwitness does not serve that endpoint unless subtree
 * signing is enabled (it is not, from its command line). Add-checkpoint verifies consistency
 * proofs with merkle v0.0.2's proof.VerifyConsistency, unchanged. No third-party source is kept
 * in this repository.
 *
 * Deviations of this omniwitness from c2sp.org/tlog-witness that the tests do NOT rely on:
 * - for a log it has no state for, it cosigns whatever `old` the request says (200 for `old 7`
 *   where the spec wants 409 with body `0`; witness/witness.go Update signs when the stored
 *   checkpoint is nil before comparing sizes): a witness that lost its database accepts our
 *   stale size instead of making us re-sync;
 * - a checkpoint signed only by a key it does not trust gets 500, not 403 (the error of
 *   formats/log.ParseCheckpoint is not mapped to ErrNoValidSignature in witness/http.go);
 * - it has no GET <monitoring prefix>/<hex sha256(origin)>/checkpoint endpoint.
 *
 * Needs Go >= 1.26 on PATH and the Go module proxy for the first build (about a minute cold; a
 * few seconds from the build cache).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { hashToken } from '../../src/http/auth.js';
import { Log, silentLogger } from '../../src/log/log.js';
import { logPaths } from '../../src/tile-store/paths.js';
import { formatPrivateKey, formatVerifierKey, generatePrivateKey, parseVerifierKey, SignatureType } from '../../src/note/keys.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { encodeBase64, parseNote } from '../../src/note/note.js';
import { cosignatureTimestamp, derivePublicKey, verifierFor } from '../../src/note/signers.js';
import { verifyCheckpoint } from '../../src/note/verified-checkpoint.js';
import { parsePolicy, type WitnessPolicy } from '../../src/note/witness-policy.js';
import { formatIndexPath } from '../../src/tiles/layout.js';
import { WitnessEndpoint } from '../../src/witness-client/client.js';
import { Cosigner } from '../../src/witness-client/cosigner.js';
import { ensureDist, tlogBin } from '../helpers/dist.js';
import { spawnServe, writeConfig, type ServeProc } from '../helpers/tlog-cli.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const moduleDir = path.join(here, 'go-omniwitness');
const omniwitnessBin = path.join(here, 'go', 'bin', 'omniwitness');
const WITNESS_MODULE = 'github.com/transparency-dev/witness';
const MERKLE_MODULE = 'github.com/transparency-dev/merkle';
/** The merkle release the stand-in is made from (the newest the proxy serves). */
const MERKLE_BASE = 'v0.0.2';

// ---- building omniwitness ----

/** Our stand-in for the merkle function the proxy-refused version adds (sign-subtree only). */
const SUBTREE_STUB = `// Written by test/interop/omniwitness.test.ts: not part of merkle ${MERKLE_BASE}.
package proof

import (
	"errors"

	"github.com/transparency-dev/merkle"
)

// VerifySubtreeConsistency always fails: omniwitness uses it only in sign-subtree, which the
// interop test does not enable.
func VerifySubtreeConsistency(hasher merkle.LogHasher, start, end, size uint64, proof [][]byte, subtreeHash, root []byte) error {
	return errors.New("subtree consistency proofs are not available in this build")
}
`;
import { stopChild } from '../helpers/processes.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';

function run(cmd: string, args: string[], cwd: string, timeout: number): string {
  // GOWORK=off: a go.work above the temp dir must not change what is built.
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=readonly' } });
  if (r.error || r.status !== 0) {
    throw new Error(`\`${cmd} ${args.join(' ')}\` failed in ${cwd} (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr}`);
  }
  return r.stdout;
}

function makeWritable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) makeWritable(p);
    else chmodSync(p, 0o644);
  }
}

/** Builds omniwitness into test/interop/go/bin/omniwitness; returns the build's module versions. */
function buildOmniwitness(): string {
  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(
      `\`go\` is not on PATH: test/interop/omniwitness.test.ts builds omniwitness from ${moduleDir} and needs Go >= 1.26 (${version.error?.message ?? version.stderr})`,
    );
  }
  const work = makeTempDir('omniwitness-build-');
  try {
    // merkle v0.0.2 from the proxy, copied out of the (read-only) module cache, plus our stub.
    const dl = JSON.parse(run('go', ['mod', 'download', '-json', `${MERKLE_MODULE}@${MERKLE_BASE}`], work, 120_000)) as { Dir?: string; Error?: string };
    if (!dl.Dir) throw new Error(`go mod download ${MERKLE_MODULE}@${MERKLE_BASE}: ${dl.Error ?? 'no Dir'}`);
    const merkleDir = path.join(work, 'merkle');
    cpSync(dl.Dir, merkleDir, { recursive: true });
    makeWritable(merkleDir);
    writeFileSync(path.join(merkleDir, 'proof', 'subtree_stub.go'), SUBTREE_STUB);
    // The pinned module, with the replace that makes it buildable.
    const mod = path.join(work, 'mod');
    mkdirSync(mod);
    copyFileSync(path.join(moduleDir, 'go.mod'), path.join(mod, 'go.mod'));
    copyFileSync(path.join(moduleDir, 'go.sum'), path.join(mod, 'go.sum'));
    run('go', ['mod', 'edit', `-replace=${MERKLE_MODULE}=${merkleDir}`], mod, 30_000);
    mkdirSync(path.dirname(omniwitnessBin), { recursive: true });
    // -trimpath: the temp dir's name stays out of the binary and out of the build cache keys.
    run('go', ['build', '-trimpath', '-buildvcs=false', '-o', omniwitnessBin, `${WITNESS_MODULE}/cmd/omniwitness`], mod, 280_000);
    return run('go', ['version', '-m', omniwitnessBin], mod, 30_000);
  } catch (e) {
    throw new Error(`cannot build omniwitness (${version.stdout.trim()}): ${(e as Error).message}`);
  } finally {
    removeDir(work);
  }
}

// ---- running it ----

/**
 * A free loopback port (omniwitness does not report the port it got for :0). Picked below
 * Linux's ephemeral range (32768+), so that outgoing connections of other tests running in
 * parallel do not take it between this check and omniwitness's listen.
 */
async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
    if (attempt > 50) throw new Error('no free loopback port in 20000-31999');
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

interface WitnessKeys {
  readonly name: string;
  /** x/mod private key files, as omniwitness reads them. */
  readonly files: string[];
  /** The vkeys its cosignatures verify under: 0x04 (Ed25519) and 0x06 (ML-DSA-44). */
  readonly ed25519: string;
  readonly mldsa44: string;
}

function witnessKeys(dir: string, name: string): WitnessKeys {
  const ed = generatePrivateKey(name, SignatureType.ed25519);
  const ml = generatePrivateKey(name, SignatureType.mldsa44Subtree);
  const edPub = derivePublicKey(ed);
  const mlPub = derivePublicKey(ml);
  const files = [path.join(dir, 'witness-ed25519.key'), path.join(dir, 'witness-mldsa44.key')];
  writeFileSync(files[0]!, formatPrivateKey(ed, edPub), { mode: 0o600 });
  writeFileSync(files[1]!, formatPrivateKey(ml, mlPub), { mode: 0o600 });
  return {
    name,
    files,
    ed25519: formatVerifierKey({ name, type: SignatureType.cosignatureV1, publicKey: edPub }),
    mldsa44: formatVerifierKey({ name, type: SignatureType.mldsa44Subtree, publicKey: mlPub }),
  };
}

/** Both omniwitness keys are needed: a two-member group of one witness at one URL. */
function policyText(k: WitnessKeys, url: string): string {
  return [
    `# omniwitness at ${url}, Ed25519 (cosignature/v1) and ML-DSA-44 (subtree/v1) keys`,
    `witness ow-ed25519 ${k.ed25519} ${url}`,
    `witness ow-mldsa44 ${k.mldsa44} ${url}`,
    'group omniwitness all ow-ed25519 ow-mldsa44',
    'quorum omniwitness',
    '',
  ].join('\n');
}

class Omniwitness {
  private child: ChildProcess | null = null;
  private stderr = '';
  readonly url: string;

  constructor(
    readonly dir: string,
    readonly port: number,
    readonly keys: WitnessKeys,
    /** The logs it witnesses: origin and the log's Ed25519 (0x01) vkey. */
    readonly logs: { origin: string; vkey: string }[],
  ) {
    this.url = `http://127.0.0.1:${port}`;
    // omniwitness's --additional_logs schema (omniwitness/configs.go, ConfigYAML): a YAML
    // `Logs` list of {Origin, PublicKey, URL}. JSON is YAML, and needs no quoting rules.
    writeFileSync(path.join(dir, 'logs.yaml'), JSON.stringify({ Logs: logs.map((l) => ({ Origin: l.origin, PublicKey: l.vkey })) }, null, 2));
  }

  /** Starts it (again, on the same port and database) and waits until it accepts connections. */
  async start(): Promise<void> {
    const args = [
      `--listen=127.0.0.1:${this.port}`,
      '--metrics_listen=', // empty: no metrics listener, one port fewer to find
      `--db_file=${path.join(this.dir, 'witness.sqlite')}`,
      ...this.keys.files.map((f) => `--private_key_path=${f}`),
      `--additional_logs=${path.join(this.dir, 'logs.yaml')}`,
    ];
    const child = spawn(omniwitnessBin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-20_000)));
    let exited: string | null = null;
    child.once('exit', (code, signal) => (exited = `${code ?? signal}`));
    const deadline = Date.now() + 15_000;
    while (!(await canConnect(this.port))) {
      if (exited !== null) throw new Error(`omniwitness exited (${exited}) before listening:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`omniwitness did not listen on ${this.port} within 15 s:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    await stopChild(child);
  }

  log(): string {
    return this.stderr;
  }
}

// ---- checks ----

/** Before any witness of this file ran, in POSIX seconds. */
const RUN_STARTED_AT = Math.floor(Date.now() / 1000);

/** The witness lines of a published note, checked against the policy; returns the names. */
function checkCosigned(note: string, logVerifiers: Parameters<typeof verifyCheckpoint>[1], policy: WitnessPolicy, size: number): string[] {
  const v = verifyCheckpoint(note, logVerifiers, policy);
  expect(v.checkpoint.treeSize).toBe(size);
  expect([...v.witnesses].sort()).toEqual(['ow-ed25519', 'ow-mldsa44']);
  const now = Math.ceil(Date.now() / 1000);
  for (const w of policy.witnesses.values()) {
    const lines = parseNote(note).signatures.filter((s) => s.name === w.verifier.name && s.keyID === w.verifier.keyID);
    expect(lines).toHaveLength(1);
    // cosignature/v1 and subtree/v1 from add-checkpoint: a real timestamp (c2sp.org/tlog-witness: ts != 0).
    const ts = cosignatureTimestamp(w.verifier.type, lines[0]!.signature);
    expect(ts).not.toBeNull();
    // Cosigned during this run (whole seconds), by the same machine's clock.
    expect(ts!).toBeGreaterThanOrEqual(RUN_STARTED_AT);
    expect(ts!).toBeLessThanOrEqual(now);
  }
  return v.witnesses;
}

const entries = (from: number, n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`omniwitness interop entry ${from + i}`));

describe('omniwitness (github.com/transparency-dev/witness) cosigns our log', () => {
  let buildInfo = '';
  const dirs: string[] = [];
  const witnesses: Omniwitness[] = [];
  const serves: ServeProc[] = [];
  const tmp = (prefix: string) => {
    const d = makeTempDir(prefix);
    dirs.push(d);
    return d;
  };

  beforeAll(() => {
    const t0 = Date.now();
    buildInfo = buildOmniwitness();
    console.log(`omniwitness built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 300_000);

  afterEach(async () => {
    for (const s of serves.splice(0)) {
      if (s.child.exitCode === null && s.child.signalCode === null) {
        s.child.kill('SIGTERM');
        await s.exited;
      }
    }
    await Promise.all(witnesses.splice(0).map((w) => w.stop()));
  });
  afterAll(() => {
    for (const d of dirs) removeDir(d);
  });

  test('the build is the pinned witness module, with the merkle stand-in', () => {
    expect(buildInfo).toContain(`mod\t${WITNESS_MODULE}\tv0.0.0-20260720115447-2e1c6971d19e`);
    expect(buildInfo).toMatch(/dep\tgithub\.com\/transparency-dev\/formats\tv0\.1\.2-0\.20260710124811-af9e607161b6/);
    expect(buildInfo).toMatch(new RegExp(`dep\\t${MERKLE_MODULE.replace(/\./g, '\\.')}\\t\\S+\\n\\t=>`));
  });

  test('Cosigner (fail-closed): rounds of growth, a restart of the witness, re-sync from 409', async () => {
    const ORIGIN = 'example.com/omniwitnessed';
    const dir = tmp('omniwitness-cosigner-');
    const paths = logPaths(dataRootsIn(dir), 'default');
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    try {
      // The log's first vkey is its Ed25519 (0x01) key: what omniwitness verifies checkpoints with.
      expect(parseVerifierKey(log.verifierKeys()[0]!).type).toBe(SignatureType.ed25519);
      const keys = witnessKeys(dir, 'omniwitness.test/w1');
      const ow = new Omniwitness(dir, await freePort(), keys, [{ origin: ORIGIN, vkey: log.verifierKeys()[0]! }]);
      witnesses.push(ow);
      await ow.start();
      const policy = parsePolicy(policyText(keys, ow.url));
      const cosigner = new Cosigner(log, policy, { mode: 'fail-closed', timeoutMs: 5000, logger: silentLogger });

      // Rounds: 1, across the first full tile, several tiles, and a small step. Each round after
      // the first sends `old <previous size>` with a consistency proof that omniwitness checks
      // (merkle's proof.VerifyConsistency) before it cosigns.
      let size = 0;
      for (const n of [1, 299, 700, 3]) {
        await Promise.all(log.appendMany(entries(size, n)));
        size += n;
        expect(log.committed.treeSize).toBe(size);
        expect(log.published.treeSize).toBe(size - n); // fail-closed: not published before the witness
        await cosigner.tick();
        expect(log.published.treeSize, ow.log()).toBe(size);
        checkCosigned(log.published.note, log.verifiers, policy, size);
        // The log's two signatures and omniwitness's two.
        expect(parseNote(log.published.note).signatures).toHaveLength(4);
        // Kept in the history as published.
        expect(readFileSync(path.join(paths.historyDir, 'cosigned', formatIndexPath(size)), 'utf8')).toBe(log.published.note);
      }

      // omniwitness checks the proofs: a wrong one for the next size gets 422 and changes nothing.
      await Promise.all(log.appendMany(entries(size, 10)));
      const probe = new WitnessEndpoint(ow.url, [...policy.witnesses.values()], 5000);
      probe.knownSize = size;
      const bad = () => Promise.resolve(Array.from({ length: 3 }, () => new Uint8Array(32).fill(7)));
      await expect(probe.cosign(log.committed.note, log.committed.treeSize, bad)).rejects.toThrow(/HTTP 422/);
      // And it answers a stale `old` with 409 and its size as text/x.tlog.size.
      const stale = await fetch(`${ow.url}/add-checkpoint`, { method: 'POST', body: `old 0\n\n${log.published.note}` });
      expect(stale.status).toBe(409);
      expect(stale.headers.get('content-type')).toMatch(/^text\/x\.tlog\.size/);
      expect(await stale.text()).toBe(`${size}\n`);
      await cosigner.tick();
      size += 10;
      checkCosigned(log.published.note, log.verifiers, policy, size);

      // The witness goes down: appends go on, nothing is published (fail-closed), rounds end.
      await ow.stop();
      await Promise.all(log.appendMany(entries(size, 40)));
      await cosigner.tick(); // ends (connection refused) without a witness to wait for
      expect(log.published.treeSize).toBe(size);
      size += 40;
      // Back on the same database: the loop catches it up with a proof from the size it knows.
      await ow.start();
      await cosigner.tick();
      expect(log.published.treeSize, ow.log()).toBe(size);
      checkCosigned(log.published.note, log.verifiers, policy, size);

      // A second loop (the log restarted) starts at `old 0`: omniwitness, holding `size`, answers
      // 409 with it, and the loop retries from there with a proof.
      await Promise.all(log.appendMany(entries(size, 25)));
      size += 25;
      const fresh = new Cosigner(log, policy, { mode: 'fail-closed', timeoutMs: 5000, logger: silentLogger });
      await fresh.tick();
      expect(log.published.treeSize, ow.log()).toBe(size);
      checkCosigned(log.published.note, log.verifiers, policy, size);

      // The first loop's size is now stale (it last saw size - 25): 409 again, re-sync, cosigned.
      await Promise.all(log.appendMany(entries(size, 5)));
      size += 5;
      await cosigner.tick();
      expect(log.published.treeSize, ow.log()).toBe(size);
      checkCosigned(log.published.note, log.verifiers, policy, size);

      // A loop started when the witness already holds this very size: 409 `size`, then `old size`
      // with an empty proof, which omniwitness cosigns again; still one line per witness key.
      const third = new Cosigner(log, policy, { mode: 'fail-closed', timeoutMs: 5000, logger: silentLogger });
      await third.tick();
      expect(log.published.treeSize, ow.log()).toBe(size);
      checkCosigned(log.published.note, log.verifiers, policy, size);
      expect(parseNote(log.published.note).signatures).toHaveLength(4);
    } finally {
      await log.close();
    }
  }, 60_000);

  test('tlog serve --config: a tenant whose witnesses.policy names omniwitness publishes its cosignatures', async () => {
    ensureDist();
    const ORIGIN = 'example.com/served-omniwitnessed';
    const TENANT = 'witnessed';
    const TOKEN = 'omniwitness-interop-token';
    const dir = tmp('omniwitness-serve-');
    const keys = witnessKeys(dir, 'omniwitness.test/w2');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const policyFile = path.join(dir, 'policy.txt');
    writeFileSync(policyFile, policyText(keys, url));
    const cfgFile = path.join(dir, 'tlog.json');
    writeConfig(cfgFile, {
      tilesDir: 'tiles',
      checkpointsDir: 'checkpoints',
      stateDir: 'state',
      tenants: [
        {
          name: TENANT,
          origin: ORIGIN,
          credentials: { tokens: [hashToken(TOKEN)] },
          witnesses: { policyFile: 'policy.txt', mode: 'fail-closed', intervalSeconds: 0.5, timeoutSeconds: 5 },
        },
      ],
    });
    // The service starts first and creates the log; the witness is not there yet.
    const srv = await spawnServe(['--config', cfgFile], { cwd: dir });
    serves.push(srv);
    const vkeys = readFileSync(path.join(dir, 'checkpoints', TENANT, 'vkeys'), 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    const logVerifiers = vkeys.map((k) => verifierFor(parseVerifierKey(k)));
    const policy = parsePolicy(readFileSync(policyFile, 'utf8'));

    const checkpoint = async () => {
      const r = await fetch(`${srv.url}/${TENANT}/checkpoint`);
      expect(r.status).toBe(200);
      return r.text();
    };
    const append = async (from: number, n: number) => {
      const r = await fetch(`${srv.url}/${TENANT}/append-batch`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(entries(from, n).map((e) => encodeBase64(e))),
      });
      expect(r.status, await r.clone().text()).toBe(200);
    };
    /** Polls GET /<tenant>/checkpoint until it is `size`, cosigned under the policy. */
    const cosignedAt = async (size: number, ow: Omniwitness) => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const note = await checkpoint();
        if (parseCheckpoint(parseNote(note).text).treeSize === size) {
          checkCosigned(note, logVerifiers, policy, size);
          return note;
        }
        if (Date.now() > deadline)
          throw new Error(
            `checkpoint not cosigned at size ${size} within 15 s; serving:\n${note}\nserve:\n${srv.stderr().slice(-3000)}\nomniwitness:\n${ow.log()}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    await append(0, 20);
    // A couple of rounds against a witness that is not listening: fail-closed keeps the empty tree.
    await new Promise((r) => setTimeout(r, 1200));
    expect(parseCheckpoint(parseNote(await checkpoint()).text).treeSize).toBe(0);

    const ow = new Omniwitness(dir, port, keys, [{ origin: ORIGIN, vkey: vkeys[0]! }]);
    witnesses.push(ow);
    await ow.start();
    await cosignedAt(20, ow);
    await append(20, 280);
    await cosignedAt(300, ow);
    await append(300, 1);
    const note = await cosignedAt(301, ow);
    // Every cosigned checkpoint is kept under checkpoints/<tenant>/cosigned/.
    expect(readFileSync(path.join(dir, 'checkpoints', TENANT, 'cosigned', formatIndexPath(301)), 'utf8')).toBe(note);
    expect(existsSync(path.join(dir, 'checkpoints', TENANT, 'cosigned', formatIndexPath(20)))).toBe(true);

    // A verifier of the served log: `tlog verify --url` audits the tiles and checks the policy.
    const v = spawnSync(
      process.execPath,
      [
        tlogBin,
        'verify',
        '--url',
        `${srv.url}/${TENANT}`,
        ...vkeys.flatMap((k) => ['--vkey', k]),
        '--origin',
        ORIGIN,
        '--witness-policy',
        policyFile,
        '--json',
      ],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(v.status, v.stderr).toBe(0);
    const report = JSON.parse(v.stdout) as { treeSize: number; witnesses: string[] };
    expect(report.treeSize).toBe(301);
    expect([...report.witnesses].sort()).toEqual(['ow-ed25519', 'ow-mldsa44']);

    // The service stops cleanly with the cosigner running.
    srv.child.kill('SIGTERM');
    expect((await srv.exited).code).toBe(0);
    expect(statSync(path.join(dir, 'tiles', TENANT, 'checkpoint')).isFile()).toBe(true);
    expect(readFileSync(path.join(dir, 'tiles', TENANT, 'checkpoint'), 'utf8')).toBe(note);
  }, 60_000);
});
