/**
 * Fixtures of the anchoring tests: a log on temporary data roots, an anchoring configuration with
 * short timeouts and backoffs, an Anchorer over the log, and a fake Rekor v1 beside a log.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Anchorer, type AnchorerOptions } from '../../src/anchor/anchorer.js';
import { resolveAnchorConfig, type AnchorConfigInput } from '../../src/anchor/config.js';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots, type LogPaths } from '../../src/tile-store/paths.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';
import { FakeRekorV1 } from './fake-rekor-v1.js';

export interface Fixture {
  readonly dir: string;
  readonly roots: DataRoots;
  readonly paths: LogPaths;
  readonly log: Log;
  cleanup(): Promise<void>;
}

export async function makeLog(tenant = 'anchored', entries = 3): Promise<Fixture> {
  const { dir, roots } = tempDataRoots('tlog-anchor-');
  const paths = logPaths(roots, tenant);
  const log = await Log.init(paths, `example.com/${tenant}`);
  for (let i = 0; i < entries; i++) await log.append(Buffer.from(`entry ${i}`));
  return {
    dir,
    roots,
    paths,
    log,
    async cleanup() {
      await log.close();
      removeDir(dir);
    },
  };
}

export function fastConfig(rekor: AnchorConfigInput['rekor'], over: Partial<AnchorConfigInput> = {}) {
  return resolveAnchorConfig({ rekor, timeoutMs: 1500, initialBackoffMs: 20, maxBackoffMs: 200, tickMs: 25, ...over });
}

export async function openAnchorer(f: Fixture, rekor: AnchorConfigInput['rekor'], over: Partial<AnchorerOptions> = {}, cfg: Partial<AnchorConfigInput> = {}) {
  return Anchorer.open({ paths: f.paths, config: fastConfig(rekor, cfg), logVerifiers: f.log.verifiers, latest: () => f.log.committed.note, ...over });
}

/** A fake Rekor v1 and a log: what each anchoring test against Rekor v1 starts from. */
export interface RekorV1Setup {
  readonly rekor: FakeRekorV1;
  readonly f: Fixture;
  /** Rekor's public key, in a file (with `forAnotherProcess`). */
  readonly keyFile: string;
}

/**
 * Starts a fake Rekor v1 and makes a log (makeLog). `forAnotherProcess`: the log is closed (one
 * writer per log: a CLI command or a child process opens it) and Rekor's key is written to a file.
 */
export async function upRekorV1AndLog(o: { tenant?: string; entries?: number; forAnotherProcess?: boolean } = {}): Promise<RekorV1Setup> {
  const rekor = new FakeRekorV1();
  await rekor.up();
  const f = await makeLog(o.tenant, o.entries);
  let keyFile = '';
  if (o.forAnotherProcess) {
    await f.log.close();
    keyFile = path.join(f.dir, 'rekor.pem');
    writeFileSync(keyFile, rekor.publicKeyPem);
  }
  return { rekor, f, keyFile };
}

/** Stops what upRekorV1AndLog started and removes the log. */
export async function downRekorV1AndLog(s: Pick<RekorV1Setup, 'rekor' | 'f'>): Promise<void> {
  await s.rekor.down();
  await s.f.cleanup();
}
