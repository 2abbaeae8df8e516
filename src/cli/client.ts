/**
 * The verifying client on the command line:
 *   tlog monitor --url <prefix> --vkey ... [--witness-policy F] [--state F] [--once]
 *   tlog proof <index> (--url <prefix> | --tenant t) [--vkey ...] [--out FILE]
 *   tlog proof verify FILE (--entry FILE | --leaf-hash B64) --vkey ... [--witness-policy F]
 * (`tlog verify --url` is the full audit, in main.ts.)
 */
import { type Command, Option } from 'commander';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parseCanonicalDecimal } from '../decimal.js';
import { errnoWords, errorChain, TlogError, ErrorCode } from '../errors.js';
import { Monitor, type MonitorAdvance, type MonitorRetry } from '../client/monitor.js';
import { createTlogProof, verifyTlogProof, type ProvenLeaf } from '../client/proof-file.js';
import { dirSource, type TlogSource } from '../client/source.js';
import { cliUrlSource } from './url-source.js';
import { TileFetcher } from '../client/tiles.js';
import { InconsistentCheckpointsError, fetchCheckpoint, proveInclusion, type CheckpointTrust } from '../client/verify.js';
import { DEFAULT_TENANT, type DataRoots } from '../tile-store/paths.js';
import { decodeBase64Strict, encodeBase64 } from '../note/note.js';
import { parsePolicy } from '../note/witness-policy.js';
import { publicLog } from './local.js';

const tenantOption = () => new Option('--tenant <name>', 'read the local log of this tenant (default: TLOG_TENANT or "default")');

interface TrustOpts {
  vkey?: string[];
  witnessPolicy?: string;
  origin?: string;
}

interface SourceOpts extends TrustOpts {
  url?: string;
  tenant?: string;
}

async function readText(p: string, what: string): Promise<string> {
  try {
    return await fsp.readFile(p, 'utf8');
  } catch (e) {
    throw new TlogError(ErrorCode.notFound, `cannot read ${what} ${p}: ${errnoWords(e)}`);
  }
}

/** The log to read and the keys to trust: --url with --vkey, or a local tenant (its published vkeys by default). */
async function sourceAndTrust(o: SourceOpts, getRoots: () => DataRoots): Promise<{ src: TlogSource; trust: CheckpointTrust }> {
  let vkeys = o.vkey ?? [];
  let src: TlogSource;
  if (o.url !== undefined) {
    if (o.tenant !== undefined) throw new TlogError(ErrorCode.badInput, 'give --url or --tenant, not both');
    src = cliUrlSource(o.url);
  } else {
    const paths = await publicLog(getRoots(), o.tenant ?? process.env.TLOG_TENANT ?? DEFAULT_TENANT);
    src = dirSource(paths.tilesDir, { derivePartials: true });
    if (vkeys.length === 0) {
      vkeys = (await readText(path.join(paths.historyDir, 'vkeys'), 'verifier keys'))
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '');
    }
  }
  return { src, trust: await trustOf({ ...o, vkey: vkeys }) };
}

async function trustOf(o: TrustOpts): Promise<CheckpointTrust> {
  const policy = o.witnessPolicy ? parsePolicy(await readText(o.witnessPolicy, 'witness policy')) : undefined;
  if ((o.vkey ?? []).length === 0 && !policy?.logKeys.length) {
    throw new TlogError(ErrorCode.badInput, 'no log key: give --vkey (or a witness policy with "log" lines)');
  }
  return { logKeys: o.vkey ?? [], ...(policy ? { policy } : {}), ...(o.origin !== undefined ? { origin: o.origin } : {}) };
}

function parseIndex(s: string): number {
  const n = parseCanonicalDecimal(s);
  if (n === null) throw new TlogError(ErrorCode.badInput, `index ${JSON.stringify(s)} is not a canonical decimal`);
  return n;
}

/** Writes a file (or stdout for "-" / no file). */
async function output(file: string | undefined, data: string): Promise<void> {
  if (file === undefined || file === '-') process.stdout.write(data);
  else await fsp.writeFile(file, data);
}

function describeFork(e: InconsistentCheckpointsError): string {
  return `${e.message}\nevidence: the accepted checkpoint\n${e.older.note}\nand the new one\n${e.newer.note}`;
}

export function registerClientCommands(program: Command, getRoots: () => DataRoots): void {
  program
    .command('monitor')
    .description('follow a log: verify every new checkpoint and its consistency with the last, and print every new entry as a JSON line')
    .option('--url <prefix>', "the log's tlog-tiles URL prefix")
    .addOption(tenantOption())
    .option('--vkey <vkey...>', 'log verifier key(s) to trust (default for a local tenant: its published vkeys)')
    .option('--witness-policy <file>', 'require every checkpoint to satisfy this witness policy')
    .option('--origin <origin>', 'require this origin')
    .option('--state <file>', 'keep the last accepted checkpoint here, and resume from it')
    .option('--from-latest', 'with no state, start at the current checkpoint instead of streaming every entry from 0')
    .option('--interval <seconds>', 'seconds between polls', '10')
    .option('--once', 'poll once and exit (a failed fetch is then an error, not retried)')
    .option('--no-entries', 'do not print the entries, only the accepted checkpoints')
    .action(async (o: SourceOpts & { state?: string; fromLatest?: boolean; interval: string; once?: boolean; entries: boolean }) => {
      const { src, trust } = await sourceAndTrust(o, getRoots);
      const interval = Number(o.interval);
      if (!(interval > 0)) throw new TlogError(ErrorCode.badInput, `--interval ${o.interval} is not a positive number of seconds`);
      const monitor = new Monitor({
        src,
        ...trust,
        ...(o.state !== undefined ? { stateFile: path.resolve(o.state) } : {}),
        startAtLatest: !!o.fromLatest,
        intervalMs: interval * 1000,
      });
      const resumed = await monitor.load();
      if (resumed) process.stderr.write(`resuming at size ${resumed.checkpoint.treeSize} (${o.state})\n`);
      const onAdvance = (a: MonitorAdvance) => {
        const cp = a.checkpoint.checkpoint;
        process.stderr.write(
          `accepted ${cp.origin} size ${cp.treeSize} root ${encodeBase64(cp.rootHash)}` +
            (a.previous ? `, consistent with size ${a.previous.checkpoint.treeSize}` : '') +
            `, ${a.entries} new entries` +
            (a.checkpoint.witnesses.length ? `, cosigned by ${a.checkpoint.witnesses.join(', ')}` : '') +
            '\n',
        );
      };
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let buf = '';
      const flush = () => {
        if (buf) process.stdout.write(buf);
        buf = '';
      };
      try {
        // A log that is down or overloaded is waited for (the state is kept); the reason is said.
        const onRetry = (r: MonitorRetry) =>
          process.stderr.write(`poll failed (${r.failures} in a row): ${errorChain(r.error)}; retrying in ${(r.delayMs / 1000).toFixed(1)} s\n`);
        const entries = o.once ? monitor.pollEntries(onAdvance) : monitor.entries({ signal: ac.signal, onAdvance, onRetry });
        for await (const e of entries) {
          if (!o.entries) continue;
          buf += JSON.stringify({ index: e.index, leafHash: encodeBase64(e.leafHash), entry: encodeBase64(e.entry) }) + '\n';
          if (buf.length > 1 << 16) flush();
        }
        flush();
        if (o.once && !monitor.checkpoint) process.stderr.write('no checkpoint accepted\n');
      } catch (e) {
        flush();
        if (e instanceof InconsistentCheckpointsError) {
          process.stderr.write(describeFork(e));
          throw new TlogError(ErrorCode.verification, 'fork detected: the log is not consistent with the checkpoint accepted before (evidence above)');
        }
        throw e;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });

  const proof = program
    .command('proof')
    .description("write a c2sp.org/tlog-proof file for entry <index>, verified against the log's checkpoint (see also: proof verify)")
    .argument('<index>', 'the entry index')
    .option('--url <prefix>', "the log's tlog-tiles URL prefix")
    .addOption(tenantOption())
    .option('--vkey <vkey...>', 'log verifier key(s) to trust (default for a local tenant: its published vkeys)')
    .option('--witness-policy <file>', 'require the checkpoint to satisfy this witness policy')
    .option('--origin <origin>', 'require this origin')
    .option('--extra <base64>', 'opaque extra data to carry in the proof (not authenticated)')
    .option('--out <file>', 'write the proof here (default: stdout)')
    .action(async (indexArg: string, o: SourceOpts & { extra?: string; out?: string }) => {
      const index = parseIndex(indexArg);
      const { src, trust } = await sourceAndTrust(o, getRoots);
      let extra: Uint8Array | undefined;
      if (o.extra !== undefined) {
        extra = decodeBase64Strict(o.extra) ?? undefined;
        if (!extra) throw new TlogError(ErrorCode.badInput, '--extra is not base64');
      }
      const tiles = new TileFetcher(src);
      const cp = await fetchCheckpoint(tiles, trust);
      // The entry is fetched and hashed too, so the proof is known to cover what the log holds.
      const inc = await proveInclusion(tiles, cp, index);
      const text = await createTlogProof(tiles, cp, index, extra ? { extra } : {});
      await output(o.out, text);
      process.stderr.write(
        `entry ${index} (leaf hash ${encodeBase64(inc.leafHash)}) is in ${cp.checkpoint.origin} at size ${cp.checkpoint.treeSize}` +
          (o.out ? `; proof written to ${o.out}` : '') +
          '\n',
      );
    });

  proof
    .command('verify')
    .description("check a c2sp.org/tlog-proof file offline against an entry (or its leaf hash) and the log's keys")
    .argument('<file>', 'the .tlog-proof file')
    .option('--entry <file>', 'the entry the proof is for')
    .option('--leaf-hash <base64>', 'the RFC 6962 leaf hash of the entry, instead of --entry')
    .option('--vkey <vkey...>', 'log verifier key(s) to trust')
    .option('--witness-policy <file>', 'require the checkpoint to satisfy this witness policy')
    .option('--origin <origin>', 'require this origin')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      // `proof` has --vkey, --witness-policy and --origin too, and commander lets the parent take
      // them wherever they appear: read both levels.
      const o = cmd.optsWithGlobals<TrustOpts & { entry?: string; leafHash?: string; json?: boolean }>();
      if ((o.entry === undefined) === (o.leafHash === undefined)) throw new TlogError(ErrorCode.badInput, 'give one of --entry and --leaf-hash');
      let leaf: ProvenLeaf;
      if (o.entry !== undefined) leaf = { entry: await fsp.readFile(o.entry) };
      else {
        const h = decodeBase64Strict(o.leafHash!);
        if (!h || h.length !== 32) throw new TlogError(ErrorCode.badInput, '--leaf-hash is not base64 of 32 bytes');
        leaf = { leafHash: h };
      }
      const trust = await trustOf(o);
      const data = await fsp.readFile(file).catch((e: NodeJS.ErrnoException) => {
        throw new TlogError(ErrorCode.notFound, `cannot read proof file ${file}: ${errnoWords(e)}`);
      });
      const r = verifyTlogProof(data, leaf, trust);
      const cp = r.checkpoint.checkpoint;
      if (o.json) {
        process.stdout.write(
          JSON.stringify({
            ok: true,
            index: r.index,
            leafHash: encodeBase64(r.leafHash),
            origin: cp.origin,
            treeSize: cp.treeSize,
            rootHash: encodeBase64(cp.rootHash),
            witnesses: r.checkpoint.witnesses,
            ...(r.extra ? { extra: encodeBase64(r.extra) } : {}),
          }) + '\n',
        );
      } else {
        process.stdout.write(
          `ok: entry ${r.index} (leaf hash ${encodeBase64(r.leafHash)}) is in ${cp.origin} at size ${cp.treeSize} root ${encodeBase64(cp.rootHash)}` +
            (r.checkpoint.witnesses.length ? `, cosigned by ${r.checkpoint.witnesses.join(', ')}` : '') +
            '\n',
        );
      }
    });
}
