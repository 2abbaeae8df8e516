/**
 * Tessera's POSIX log servers for bench/peer, built from bench/peer/go (the module pins the
 * Tessera version) into a cache directory once and reused:
 *   - tessera-posix: Tessera's own conformance server (cmd/conformance/posix, the module's `tool`
 *     line), stock: batches of 256 entries or 1 s, a checkpoint every 1 s;
 *   - tessera-tuned: bench/peer/go/main.go, the same routes on the same storage driver with the
 *     batching and checkpoint interval as flags.
 * Both answer POST /add with the entry's index and serve /checkpoint and /tile/ from the log's
 * directory.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatPrivateKey, generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { derivePublicKey } from '../../src/note/signers.js';
import { freePort, startListening, type Running } from './servers.js';

/** bench/peer/go in the repository (this file runs from dist/bench/lib/). */
const GO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/peer/go');
const TESSERA_MODULE = 'github.com/transparency-dev/tessera';

export interface TesseraBinaries {
  readonly version: string;
  readonly stock: string;
  readonly tuned: string;
}

/** ~/.cache/tlog-bench (or under $XDG_CACHE_HOME). */
export function defaultCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'tlog-bench');
}

/**
 * The two binaries, built with `go build` (modules from the Go module proxy, as go.sum pins them)
 * into `cacheDir`/tessera-<version>-<hash of the module's files and go version>, unless already there.
 */
export function buildTessera(cacheDir: string): TesseraBinaries {
  const files = ['go.mod', 'go.sum', 'main.go'].map((f) => readFileSync(path.join(GO_DIR, f)));
  const version = /^\s*github\.com\/transparency-dev\/tessera (v\S+)/m.exec(files[0]!.toString())?.[1];
  if (!version) throw new Error(`${GO_DIR}/go.mod does not require ${TESSERA_MODULE}`);
  let goVersion: string;
  try {
    goVersion = execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('bench/peer builds Tessera with Go: put `go` on PATH');
  }
  const h = createHash('sha256');
  for (const f of files) h.update(f);
  h.update(goVersion);
  const dir = path.join(cacheDir, `tessera-${version}-${h.digest('hex').slice(0, 12)}`);
  const out = { version, stock: path.join(dir, 'tessera-posix'), tuned: path.join(dir, 'tessera-tuned') };
  const build = (target: string, pkg: string) => {
    if (existsSync(target)) return;
    mkdirSync(dir, { recursive: true });
    console.log(`building ${path.basename(target)} (Tessera ${version}) into ${dir} ...`);
    const tmp = `${target}.tmp-${process.pid}`;
    execFileSync('go', ['build', '-trimpath', '-buildvcs=false', '-o', tmp, pkg], { cwd: GO_DIR, stdio: ['ignore', 'inherit', 'inherit'], timeout: 900_000 });
    renameSync(tmp, target);
  };
  build(out.stock, `${TESSERA_MODULE}/cmd/conformance/posix`);
  build(out.tuned, '.');
  return out;
}

export interface TesseraServer extends Running {
  /** The log's directory (what Tessera's file server and nginx serve). */
  readonly storageDir: string;
  readonly checkpointFile: string;
  readonly logFile: string;
}

export interface Tuning {
  readonly batchSize: number;
  /** Go durations, e.g. "10ms". */
  readonly batchAge: string;
  readonly checkpointInterval: string;
}

/**
 * Starts one Tessera server on a new log in `workDir` (the log in `workDir`/log, its Ed25519 note
 * key in `workDir`/key, 0600, outside the served directory, its output in `workDir`/server.log);
 * `tuning` selects tessera-tuned. Resolves once the first checkpoint is published.
 */
export async function startTessera(bins: TesseraBinaries, workDir: string, origin: string, tuning?: Tuning): Promise<TesseraServer> {
  const storageDir = path.join(workDir, 'log');
  mkdirSync(storageDir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(workDir, 'key');
  const key = generatePrivateKey(origin, SignatureType.ed25519);
  writeFileSync(keyFile, `${formatPrivateKey(key, derivePublicKey(key))}\n`, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  const url = `http://127.0.0.1:${await freePort()}`;
  const args = ['--storage_dir', storageDir, '--listen', url.slice('http://'.length), '--private_key', keyFile];
  if (tuning) args.push('--batch_size', String(tuning.batchSize), '--batch_age', tuning.batchAge, '--checkpoint_interval', tuning.checkpointInterval);
  const logFile = path.join(workDir, 'server.log');
  const fd = openSync(logFile, 'a');
  let running: Running;
  try {
    running = await startListening(tuning ? bins.tuned : bins.stock, args, url, '/checkpoint', fd);
  } catch (e) {
    throw new Error(`${(e as Error).message}; its output:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
  } finally {
    closeSync(fd);
  }
  const checkpointFile = path.join(storageDir, 'checkpoint');
  for (let i = 0; !existsSync(checkpointFile); i++) {
    if (i > 300) {
      await running.stop();
      throw new Error(`Tessera published no checkpoint in 30 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...running, storageDir, checkpointFile, logFile };
}
