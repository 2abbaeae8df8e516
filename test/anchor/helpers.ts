import { Anchorer, type AnchorerOptions } from '../../src/anchor/anchorer.js';
import { resolveAnchorConfig, type AnchorConfigInput } from '../../src/anchor/config.js';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots, type LogPaths } from '../../src/tile-store/paths.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';

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
