/**
 * `tlog export --format vip-ledger` and `tlog export verify FILE`: the VIP-STD-002 ledger view
 * of a log (see src/client/export.ts for the format).
 */
import { type Command, Option } from 'commander';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseCanonicalDecimal } from '../decimal.js';
import { errnoWords, TlogError, ErrorCode } from '../errors.js';
import { exportLedger, LEDGER_FORMAT, verifyLedger } from '../client/export.js';
import { dirSource, type TlogSource } from '../client/source.js';
import { cliUrlSource } from './url-source.js';
import { parseVerifierKey } from '../note/keys.js';
import type { NoteVerifier } from '../note/note.js';
import { verifierFor } from '../note/signers.js';
import { DEFAULT_TENANT, type DataRoots } from '../tile-store/paths.js';
import { formatIndexPath } from '../tiles/layout.js';
import { publicLog } from './local.js';

const tenantOption = () => new Option('--tenant <name>', 'tenant (log) name').default(process.env.TLOG_TENANT ?? DEFAULT_TENANT);

async function readIfExists(p: string): Promise<string | null> {
  try {
    return await fsp.readFile(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TlogError(ErrorCode.io, `cannot read ${p}: ${errnoWords(e)}`);
  }
}

async function mustRead(p: string, what: string): Promise<string> {
  const text = await readIfExists(p);
  if (text === null) throw new TlogError(ErrorCode.notFound, `${what} ${p} does not exist`);
  return text;
}

function verifiersOf(vkeys: readonly string[]): NoteVerifier[] {
  return vkeys.map((k) => verifierFor(parseVerifierKey(k)));
}

function vkeyLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** checkpoints/<tenant>/log/<N>: the signed checkpoint of tree size N. */
function historyFile(historyDir: string, size: number): string {
  return path.join(historyDir, 'log', ...formatIndexPath(size).split('/'));
}

function parseSize(s: string): number {
  const n = parseCanonicalDecimal(s);
  if (n === null) throw new TlogError(ErrorCode.badInput, `--size ${s} is not a tree size`);
  return n;
}

/** Writes lines to a file or stdout, in large chunks, honouring back-pressure. */
function lineWriter(out: NodeJS.WritableStream) {
  let buf: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (buf.length === 0) return;
    const chunk = buf.join('');
    buf = [];
    bytes = 0;
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  };
  return {
    async write(line: string) {
      buf.push(line, '\n');
      bytes += line.length + 1;
      if (bytes >= 1 << 20) await flush();
    },
    flush,
  };
}

interface ExportOpts {
  format?: string;
  tenant: string;
  url?: string;
  size?: string;
  out?: string;
  checkpointOut?: string;
  vkey?: string[];
}

interface VerifyOpts {
  tenant: string;
  checkpoint?: string;
  vkey?: string[];
  vkeys?: string;
  local?: boolean;
  json?: boolean;
}

/**
 * Creates `file` for writing, refusing one that exists: an export never overwrites a file (a
 * ledger is evidence). One readable line for the usual mistakes.
 */
async function createNew(file: string, what: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, 'wx', 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new TlogError(ErrorCode.conflict, `${what} ${file} already exists: export never overwrites a file (remove it, or choose another name)`);
    throw new TlogError(ErrorCode.io, `cannot create ${what} ${file}: ${errnoWords(e)}`);
  }
}

/**
 * The --tenant the user gave: `export` and `export verify` both have the option, and commander
 * lets the parent take it wherever it appears on the line (after `verify` too), so the value is
 * the one either level got from the command line, else the default.
 */
function tenantOf(cmd: Command): string {
  for (let c: Command | null = cmd; c; c = c.parent) {
    if (c.getOptionValueSource('tenant') === 'cli') return c.getOptionValue('tenant') as string;
  }
  return cmd.getOptionValue('tenant') as string;
}

/** The tree size line 1 of a ledger claims, or null. */
async function firstTreeSize(file: string): Promise<number | null> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      if (line.trim() === '') continue;
      const size = (JSON.parse(line) as { proof?: { tree_size?: unknown } }).proof?.tree_size;
      return typeof size === 'number' ? size : null;
    }
  } catch {
    return null;
  } finally {
    rl.close();
  }
  return null;
}

export function registerExportCommand(program: Command, roots: () => DataRoots): void {
  const exp = program
    .command('export')
    .description(`write the log as a VIP-STD-002 ledger: one JSON entry per line, hash-chained, each with its inclusion proof (--format ${LEDGER_FORMAT})`)
    .addOption(new Option('--format <format>', 'output format').choices([LEDGER_FORMAT]))
    .addOption(tenantOption())
    .option('--url <prefix>', 'export a remote tlog-tiles log at this URL prefix instead of a local tenant')
    .option('--size <n>', 'export the tree of this earlier checkpoint (from the local checkpoint history)')
    .option('--out <file>', 'write the ledger here (default: stdout)')
    .option('--checkpoint-out <file>', 'also write the signed checkpoint the proofs are against')
    .option('--vkey <vkey...>', 'verifier key(s) the checkpoint must verify under (default for a local tenant: its vkeys)')
    .action(async (o: ExportOpts) => {
      if (o.format !== LEDGER_FORMAT) throw new TlogError(ErrorCode.badInput, `export needs --format ${LEDGER_FORMAT}`);
      let src: TlogSource;
      let checkpoint: string | undefined;
      let vkeys = o.vkey ?? [];
      if (o.url) {
        if (o.size !== undefined) throw new TlogError(ErrorCode.badInput, '--size reads the local checkpoint history: not with --url');
        src = cliUrlSource(o.url);
      } else {
        const paths = await publicLog(roots(), o.tenant);
        // An older checkpoint's partials may have been collected: derived as `tlog serve` does.
        src = dirSource(paths.tilesDir, { derivePartials: true });
        if (vkeys.length === 0) vkeys = vkeyLines((await readIfExists(path.join(paths.historyDir, 'vkeys'))) ?? '');
        if (o.size !== undefined) checkpoint = await mustRead(historyFile(paths.historyDir, parseSize(o.size)), `no checkpoint of size ${o.size}:`);
      }
      if (o.out !== undefined && o.out === o.checkpointOut) throw new TlogError(ErrorCode.badInput, '--out and --checkpoint-out name the same file');
      // Both files are created before anything is written (neither may exist), and removed
      // again if the export fails: a failed export leaves nothing behind.
      const created: string[] = [];
      const outFile = o.out !== undefined ? await createNew(o.out, 'ledger file') : null;
      if (outFile) created.push(o.out!);
      let result;
      try {
        const cpFile = o.checkpointOut !== undefined ? await createNew(o.checkpointOut, 'checkpoint file') : null;
        if (cpFile) created.push(o.checkpointOut!);
        if (vkeys.length === 0) process.stderr.write('tlog: warning: no verifier keys: the checkpoint is exported unverified\n');
        const stream = outFile ? outFile.createWriteStream() : process.stdout;
        const w = lineWriter(stream);
        result = await exportLedger(src, { checkpoint, verifiers: verifiersOf(vkeys), write: (l) => w.write(l) });
        await w.flush();
        if (outFile) {
          const f = stream as ReturnType<typeof outFile.createWriteStream>;
          await new Promise<void>((resolve, reject) => f.end((err?: Error | null) => (err ? reject(err) : resolve())));
        }
        if (cpFile) {
          await cpFile.writeFile(result.checkpoint);
          await cpFile.close();
        }
      } catch (e) {
        await outFile?.close().catch(() => {});
        for (const f of created) await fsp.unlink(f).catch(() => {});
        throw e;
      }
      process.stderr.write(
        `exported ${result.entries} entries of ${result.origin} at tree size ${result.treeSize} (root ${result.rootHash})\n` +
          `  head entry_hash ${result.head ?? '(empty ledger)'}\n`,
      );
    });

  exp
    .command('verify')
    .description('validate a ledger: entry hashes, the prev_hash chain, indexes, and the inclusion proofs against a signed checkpoint')
    .argument('<file>', 'the ledger file (JSON lines)')
    .option('--checkpoint <file>', 'the signed checkpoint the ledger was exported at')
    .option('--vkey <vkey...>', 'verifier key(s) for the checkpoint')
    .option('--vkeys <file>', 'a file of verifier keys, one per line')
    .option('--local', "use the local tenant's checkpoint history and vkeys for the checkpoint")
    .addOption(tenantOption())
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: VerifyOpts, cmd: Command) => {
      const tenant = tenantOf(cmd);
      let checkpoint: string | undefined;
      let vkeys = [...(o.vkey ?? [])];
      if (o.vkeys) vkeys.push(...vkeyLines(await mustRead(o.vkeys, 'vkeys file')));
      if (o.checkpoint) checkpoint = await mustRead(o.checkpoint, 'checkpoint file');
      if (o.local) {
        const paths = await publicLog(roots(), tenant);
        if (vkeys.length === 0) vkeys = vkeyLines(await mustRead(path.join(paths.historyDir, 'vkeys'), 'vkeys file'));
        if (!checkpoint) {
          const size = await firstTreeSize(file);
          checkpoint =
            size !== null
              ? await mustRead(historyFile(paths.historyDir, size), `no checkpoint of size ${size} in the history:`)
              : await mustRead(path.join(paths.tilesDir, 'checkpoint'), 'checkpoint');
        }
      }
      if (file !== '-') {
        await fsp.access(file).catch(() => {
          throw new TlogError(ErrorCode.notFound, `ledger file ${file} does not exist or cannot be read`);
        });
      }
      if (checkpoint && vkeys.length === 0) throw new TlogError(ErrorCode.badInput, '--checkpoint needs --vkey or --vkeys');
      const rl = createInterface({ input: file === '-' ? process.stdin : createReadStream(file), crlfDelay: Infinity });
      let report;
      try {
        report = await verifyLedger(rl, { checkpoint, verifiers: vkeys.length > 0 ? verifiersOf(vkeys) : undefined });
      } finally {
        rl.close();
      }
      if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
      else {
        for (const p of report.problems) process.stdout.write(`line ${p.line} (index ${p.index}): ${p.message}\n`);
        if (report.ok) {
          process.stdout.write(
            `ok: ${report.entries} ledger entries of ${report.origin ?? '(empty)'}, chained and proved at tree size ${report.treeSize ?? 0}\n` +
              (report.checkpointVerified
                ? `  root ${report.rootHash} is the signed checkpoint's (signed by ${report.signers.join(', ')})\n`
                : '  warning: no checkpoint given (--checkpoint and --vkey, or --local): the root itself is not authenticated\n'),
          );
        }
      }
      if (!report.ok)
        throw new TlogError(ErrorCode.verification, `ledger ${file}: ${report.problems.length}${report.problems.length >= 100 ? '+' : ''} problem(s)`);
    });
}
