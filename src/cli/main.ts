#!/usr/bin/env node
/**
 * The `tlog` command line. Every command has --help; errors end the process with a non-zero
 * exit and one readable line on stderr.
 */
import { Command, Option } from 'commander';
import { promises as fsp, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeFsError, errorChain, ErrorCode, isTlogError, TlogError } from '../errors.js';
import { auditLog } from '../client/audit.js';
import { dirSource, type TlogSource } from '../client/source.js';
import { cliUrlSource } from './url-source.js';
import { encodeBase64 } from '../note/note.js';
import { parseVerifierKey } from '../note/keys.js';
import { verifierFor } from '../note/signers.js';
import { verifyCheckpoint } from '../note/verified-checkpoint.js';
import { parsePolicy } from '../note/witness-policy.js';
import { Log } from '../log/log.js';
import { DEFAULT_TENANT, defaultRoots, logPaths, type DataRoots } from '../tile-store/paths.js';
import { progressBar, progressCounter } from './progress.js';
import { appendLines, resultLine } from './append.js';
import { MAX_ENTRY_SIZE } from '../tiles/bundle.js';
import { registerTenantCommands } from './tenant.js';
import { registerExportCommand } from './export.js';
import { registerClientCommands } from './client.js';
import { witnessCommand } from '../../witness/main.js';
import { registerAnchorCommands } from './anchor.js';
import { publicLog, stateLog } from './local.js';
import { createLog } from '../tenants/registry.js';

interface GlobalOpts {
  tilesDir?: string;
  checkpointsDir?: string;
  stateDir?: string;
}

function roots(program: Command): DataRoots {
  const g = program.opts<GlobalOpts>();
  const d = defaultRoots();
  return {
    tilesRoot: g.tilesDir ? path.resolve(g.tilesDir) : d.tilesRoot,
    checkpointsRoot: g.checkpointsDir ? path.resolve(g.checkpointsDir) : d.checkpointsRoot,
    stateRoot: g.stateDir ? path.resolve(g.stateDir) : d.stateRoot,
  };
}

const tenantOption = () => new Option('--tenant <name>', 'tenant (log) name').default(process.env.TLOG_TENANT ?? DEFAULT_TENANT);

/** Stdin as one entry; reading stops once it is longer than an entry may be. */
async function readStdinEntry(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    n += (c as Buffer).length;
    if (n > MAX_ENTRY_SIZE)
      throw new TlogError(
        ErrorCode.tooLarge,
        `stdin is longer than ${MAX_ENTRY_SIZE} bytes: entries are 1 to 65535 bytes (use --lines for one entry per line)`,
      );
  }
  return Buffer.concat(chunks);
}

/** The package's name and version, from the package.json above this module (in src/ or dist/src/). */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    try {
      const p = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'tlog-worm' && p.version) return `tlog-worm ${p.version}`;
    } catch {
      // not here: one directory up
    }
  }
  return 'tlog-worm (version unknown: no package.json found)';
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tlog')
    .description('A write-once transparency log: C2SP tlog-tiles with Ed25519 + ML-DSA-44 checkpoints.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--tiles-dir <dir>', 'public tiles root, served as static files (env TLOG_TILES_DIR)', undefined)
    .option('--checkpoints-dir <dir>', 'checkpoint history root (env TLOG_CHECKPOINTS_DIR)', undefined)
    .option('--state-dir <dir>', 'private state root: keys, commit point, index (env TLOG_STATE_DIR)', undefined)
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });

  program
    .command('init')
    .description('create a log and its keys, and print its verifier keys')
    .requiredOption('--origin <origin>', 'the log origin, e.g. example.com/log (also the key name)')
    .addOption(tenantOption())
    .action(async (o: { origin: string; tenant: string }) => {
      const { log, outcome } = await createLog(logPaths(roots(program), o.tenant), o.origin);
      await log.close();
      const what =
        outcome.result === 'replaced'
          ? `replaced the empty log ${o.tenant} made by \`tlog serve\` (origin ${outcome.oldOrigin}) with a new log with origin ${o.origin}`
          : outcome.result === 'exists'
            ? `log ${o.tenant} already has origin ${o.origin} (made by \`tlog serve\`); kept`
            : `created log ${o.tenant} with origin ${o.origin}`;
      process.stdout.write(`${what}\nverifier keys:\n${log.verifierKeys().join('\n')}\n`);
    });

  program
    .command('append')
    .description('append each FILE as one entry (or stdin as one entry, or one entry per line with --lines)')
    .argument('[files...]', 'files to append, one entry each')
    .addOption(tenantOption())
    .option('--lines', 'read entries from stdin, one per line, appended in batches as they are read')
    .action(async (files: string[], o: { tenant: string; lines?: boolean }) => {
      if (o.lines && files.length > 0) throw new TlogError(ErrorCode.badInput, '--lines reads stdin: give no files');
      await stateLog(roots(program), o.tenant);
      const entries = o.lines ? [] : files.length > 0 ? await Promise.all(files.map((f) => fsp.readFile(f))) : [await readStdinEntry()];
      // A damaged index is rebuilt on open: show its progress.
      const log = await Log.open(await stateLog(roots(program), o.tenant), { onRebuildProgress: progressBar('rebuild index') });
      try {
        if (o.lines) {
          const progress = progressCounter('append');
          try {
            await appendLines(
              log,
              process.stdin,
              (text) => process.stdout.write(text),
              (n, size) => progress.update(`${n} lines appended, tree size ${size}`),
            );
          } finally {
            progress.done();
          }
        } else {
          const results = await Promise.all(log.appendMany(entries));
          process.stdout.write(results.map(resultLine).join(''));
        }
      } finally {
        await log.close();
      }
    });

  program
    .command('verify')
    .description('audit a log: verify its checkpoint, re-hash every entry, rebuild the tree and compare every tile')
    .addOption(tenantOption())
    .option('--url <prefix>', 'audit a remote log at this URL prefix instead of a local tenant')
    .option('--vkey <vkey...>', 'verifier key(s) to trust (default for a local tenant: its published vkeys)')
    .option('--origin <origin>', 'require this origin')
    .option('--no-history', 'do not check the local checkpoint history')
    .option('--witness-policy <file>', 'also require the checkpoint to satisfy this witness policy')
    .option('--json', 'print the report as JSON')
    .action(async (o: { tenant: string; url?: string; vkey?: string[]; origin?: string; history: boolean; json?: boolean; witnessPolicy?: string }) => {
      let src: TlogSource;
      let vkeys = o.vkey ?? [];
      let history: string[] = [];
      if (o.url) {
        if (vkeys.length === 0) throw new Error('--url needs at least one --vkey');
        src = cliUrlSource(o.url);
      } else {
        const paths = await publicLog(roots(program), o.tenant);
        src = dirSource(paths.tilesDir);
        if (vkeys.length === 0) {
          const text = await fsp.readFile(path.join(paths.historyDir, 'vkeys'), 'utf8');
          vkeys = text.split('\n').filter((l) => l.trim() !== '');
        }
        if (o.history) history = await readHistory(path.join(paths.historyDir, 'log'));
      }
      const verifiers = vkeys.map((k) => verifierFor(parseVerifierKey(k)));
      const policy = o.witnessPolicy ? parsePolicy(await fsp.readFile(o.witnessPolicy, 'utf8')) : undefined;
      // Our own log collects superseded partials and serves them as prefixes of wider ones.
      const report = await auditLog(src, { verifiers, origin: o.origin, history, collectedPartials: !o.url, onProgress: progressBar('verify') });
      let witnessed: string[] = [];
      if (policy) {
        const note = await src.get('checkpoint');
        if (!note) throw new Error(`${src.where}/checkpoint disappeared`);
        witnessed = verifyCheckpoint(note, verifiers, policy).witnesses;
      }
      if (o.json) process.stdout.write(JSON.stringify(policy ? { ...report, witnesses: witnessed } : report) + '\n');
      else {
        process.stdout.write(
          `ok: ${report.origin} size ${report.treeSize} root ${report.rootHash}\n` +
            `  ${report.entries} entries re-hashed, ${report.tilesChecked} tiles and bundles compared, ` +
            `${report.checkpointsChecked} history checkpoints consistent\n` +
            `  partials of the checkpoints checked: ${report.partials.present} present and checked, ` +
            `${report.partials.fullTileExists} absent (full tile exists)` +
            (o.url ? '' : `, ${report.partials.collected} collected (served as the prefix of a wider one)`) +
            `\n  signed by ${report.signers.join(', ')}\n` +
            (policy ? `  witness policy satisfied, cosigned by ${witnessed.join(', ') || '(quorum none)'}\n` : ''),
        );
      }
    });

  program
    .command('show')
    .description('print the tree size, root hash, origin and verifier keys of a log')
    .addOption(tenantOption())
    .option('--json', 'print as JSON')
    .action(async (o: { tenant: string; json?: boolean }) => {
      const paths = await stateLog(roots(program), o.tenant);
      const log = await Log.open(paths, { readOnly: true });
      await log.close();
      const cp = log.committed;
      const info = {
        tenant: o.tenant,
        origin: log.origin,
        treeSize: cp.treeSize,
        rootHash: encodeBase64(cp.rootHash),
        verifierKeys: log.verifierKeys(),
        tilesDir: paths.tilesDir,
        historyDir: paths.historyDir,
        stateDir: paths.stateDir,
      };
      if (o.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      else {
        process.stdout.write(
          `tenant     ${info.tenant}\norigin     ${info.origin}\ntree size  ${info.treeSize}\nroot hash  ${info.rootHash}\n` +
            `tiles      ${info.tilesDir}\nhistory    ${info.historyDir}\nstate      ${info.stateDir}\nverifier keys:\n${info.verifierKeys.join('\n')}\n`,
        );
      }
    });

  const index = program.command('index').description('the hot index: dedup table and commit point');
  index
    .command('rebuild')
    .description('rebuild the hot index of a log from its tiles (stop the writer first)')
    .addOption(tenantOption())
    .action(async (o: { tenant: string }) => {
      const r = await Log.rebuildIndex(await stateLog(roots(program), o.tenant), { onRebuildProgress: progressBar('rebuild') });
      process.stdout.write(`rebuilt ${r.path} for tree size ${r.treeSize}\n`);
    });
  index
    .command('check')
    .description('check the hot index against the log (every leaf looked up by hash); with --repair, rebuild it when damaged')
    .addOption(tenantOption())
    .option('--repair', 'rebuild the index when the check finds a problem (stop the writer first)')
    .action(async (o: { tenant: string; repair?: boolean }) => {
      const paths = await stateLog(roots(program), o.tenant);
      const log = await Log.open(paths, { readOnly: true });
      let problems: string[];
      try {
        problems = await log.checkIndex(progressBar('check'));
      } finally {
        await log.close();
      }
      if (problems.length === 0) {
        process.stdout.write(`index of ${o.tenant} is sound (${log.treeSize} leaves)\n`);
        return;
      }
      process.stdout.write(problems.map((p) => `problem: ${p}`).join('\n') + '\n');
      if (!o.repair) throw new Error(`index of ${o.tenant} has ${problems.length} problem(s): run \`tlog index check --repair\` or \`tlog index rebuild\``);
      const r = await Log.rebuildIndex(paths, { onRebuildProgress: progressBar('rebuild') });
      process.stdout.write(`rebuilt ${r.path} for tree size ${r.treeSize}\n`);
    });

  registerTenantCommands(program, () => roots(program));
  registerExportCommand(program, () => roots(program));
  registerClientCommands(program, () => roots(program));
  program.addCommand(witnessCommand('witness'));
  registerAnchorCommands(program, () => roots(program));

  program
    .command('serve')
    .description('serve the logs over HTTP (with no configuration: tenant "default", created on first start)')
    .option('--listen <host:port>', "address to listen on (default 127.0.0.1:8080, or the configuration's)", process.env.TLOG_LISTEN)
    .option('--config <file>', 'serve the tenants of this YAML or JSON configuration', process.env.TLOG_CONFIG)
    .option('--origin <origin>', 'origin of the default log when it is created (default: <listen>/default)')
    .option('--advertise <url>', "cluster node: this node's URL as the other nodes reach it (default http://<listen address>)", process.env.TLOG_ADVERTISE)
    .option('--cache-dir <dir>', "cluster node: this node's local cache (default: the configuration's data directories)", process.env.TLOG_CACHE_DIR)
    .action(async (o: { listen?: string; origin?: string; config?: string; advertise?: string; cacheDir?: string }) => {
      const { serve } = await import('./serve.js');
      await serve({ roots: roots(program), listen: o.listen, origin: o.origin, config: o.config, advertise: o.advertise, cacheDir: o.cacheDir });
    });

  return program;
}

/** Every checkpoint note under a history directory (recursively). */
async function readHistory(dir: string): Promise<string[]> {
  const out: string[] = [];
  let names: string[];
  try {
    names = await fsp.readdir(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    if (path.basename(n).startsWith('.')) continue;
    if ((await fsp.stat(p)).isFile()) out.push(await fsp.readFile(p, 'utf8'));
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    // One line. Our errors say everything in their message; a file-system error says which file
    // and what happened in words; another's may keep the reason in its cause ("fetch failed" ->
    // "connect ECONNREFUSED ..."), so that is printed too.
    const msg = isTlogError(e) ? e.message : (describeFsError(e) ?? errorChain(e));
    process.stderr.write(`tlog: ${msg.replace(/\n/g, ' ')}\n`);
    return 1;
  }
}

/**
 * Whether this module is the program being run. argv[1] is what the user (or npm) ran: through
 * `npx tlog` or an installed bin it is the symlink node_modules/.bin/tlog, while import.meta.url
 * is the module's real path, so both are compared as real paths.
 */
function isEntry(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
