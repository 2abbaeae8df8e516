/**
 * `tlog anchor now | list | verify`: anchoring checkpoints in Sigstore Rekor from the command line.
 * Registered by main.ts with `registerAnchorCommands(program, () => roots(program))`.
 *
 * The Rekor log is named by --rekor-url / --rekor-version (env TLOG_REKOR_URL, TLOG_REKOR_VERSION)
 * and trusted through its public key, --rekor-key FILE (env TLOG_REKOR_KEY): receipts are only
 * ever verified against a key given here, never one fetched from the log. A Rekor v2 anchor's
 * time is attested by a timestamp authority, --tsa-url (env TLOG_TSA_URL), trusted through its
 * certificate chain, --tsa-chain FILE (env TLOG_TSA_CHAIN), likewise never fetched.
 */
import { type Command, Option } from 'commander';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Anchorer } from '../anchor/anchorer.js';
import { resolveAnchorConfig, type RekorApiVersion } from '../anchor/config.js';
import { Outbox, ANCHOR_PUBLIC_KEY_FILE, ANCHORS_DIR } from '../anchor/outbox.js';
import { verifyReceipt } from '../anchor/receipt.js';
import { TlogError, ErrorCode } from '../errors.js';
import { Log } from '../log/log.js';
import { DEFAULT_TENANT, type DataRoots } from '../tile-store/paths.js';
import { parseVerifierKey } from '../note/keys.js';
import type { NoteVerifier } from '../note/note.js';
import { verifierFor } from '../note/signers.js';
import { readIfExists } from '../storage/durable.js';
import { stateLog } from './local.js';

const tenantOption = () => new Option('--tenant <name>', 'tenant (log) name').default(process.env.TLOG_TENANT ?? DEFAULT_TENANT);
const rekorKeyOption = () => new Option('--rekor-key <file>', 'the Rekor log public key, PEM (env TLOG_REKOR_KEY)').default(process.env.TLOG_REKOR_KEY);
const tsaChainOption = () =>
  new Option(
    '--tsa-chain <file>',
    "the timestamp authority's certificate chain, PEM, timestamping certificate first (env TLOG_TSA_CHAIN); needed for Rekor v2",
  ).default(process.env.TLOG_TSA_CHAIN);

async function readPem(file: string | undefined, what: string): Promise<string> {
  if (!file) throw new TlogError(ErrorCode.badInput, `${what}: give --rekor-key FILE (the Rekor log public key, PEM) or set TLOG_REKOR_KEY`);
  return readFileNamed(file, what);
}

async function readFileNamed(file: string, what: string): Promise<string> {
  const data = await readIfExists(path.resolve(file));
  if (!data) throw new TlogError(ErrorCode.notFound, `${what}: no file ${file}`);
  return data.toString('utf8');
}

function parseVkeys(text: string): NoteVerifier[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((k) => verifierFor(parseVerifierKey(k)));
}

export function registerAnchorCommands(program: Command, getRoots: () => DataRoots): Command {
  const anchor = program.command('anchor').description('anchor checkpoints in Sigstore Rekor and verify the receipts');

  anchor
    .command('now')
    .description("anchor the tenant's newest checkpoint in Rekor now, store and verify the receipt")
    .addOption(tenantOption())
    .addOption(
      new Option('--rekor-url <url>', 'Rekor base URL (env TLOG_REKOR_URL; v1 default https://rekor.sigstore.dev)').default(process.env.TLOG_REKOR_URL),
    )
    .addOption(new Option('--rekor-version <v>', 'Rekor API version').choices(['v1', 'v2']).default(process.env.TLOG_REKOR_VERSION ?? 'v1'))
    .option('--rekor-read-url <url>', 'v2: where the log serves checkpoint and tiles (default: --rekor-url)')
    .addOption(rekorKeyOption())
    .option('--rekor-origin <origin>', 'the Rekor log origin (Ed25519 v2 log keys only; default: the URL host)')
    .addOption(
      new Option('--tsa-url <url>', 'v2: the timestamp authority that attests the time of the anchor (env TLOG_TSA_URL)').default(process.env.TLOG_TSA_URL),
    )
    .addOption(tsaChainOption())
    .option('--timeout <ms>', 'per-request timeout in milliseconds', '30000')
    .option('--json', 'print the record as JSON')
    .action(
      async (o: {
        tenant: string;
        rekorUrl?: string;
        rekorVersion: RekorApiVersion;
        rekorReadUrl?: string;
        rekorKey?: string;
        rekorOrigin?: string;
        tsaUrl?: string;
        tsaChain?: string;
        timeout: string;
        json?: boolean;
      }) => {
        if (o.rekorVersion === 'v2' && (!o.tsaUrl || !o.tsaChain)) {
          throw new TlogError(
            ErrorCode.badInput,
            'anchor now: Rekor v2 gives no signed time: give --tsa-url URL and --tsa-chain FILE (or set TLOG_TSA_URL and TLOG_TSA_CHAIN)',
          );
        }
        const config = resolveAnchorConfig({
          rekor: {
            apiVersion: o.rekorVersion,
            publicKey: await readPem(o.rekorKey, 'anchor now'),
            ...(o.rekorUrl ? { url: o.rekorUrl } : {}),
            ...(o.rekorReadUrl ? { readUrl: o.rekorReadUrl } : {}),
            ...(o.rekorOrigin ? { origin: o.rekorOrigin } : {}),
          },
          ...(o.tsaUrl || o.tsaChain
            ? { tsa: { url: o.tsaUrl ?? '', certChain: o.tsaChain ? await readFileNamed(o.tsaChain, 'anchor now: --tsa-chain') : '' } }
            : {}),
          timeoutMs: Number(o.timeout),
        });
        const paths = await stateLog(getRoots(), o.tenant);
        // Opening the log checks its state and gives the newest checkpoint and our verifiers.
        const log = await Log.open(paths);
        await log.close();
        const anchorer = await Anchorer.open({ paths, config, logVerifiers: log.verifiers });
        try {
          // Earlier jobs first (a crash or an outage may have left some), then the newest checkpoint.
          await anchorer.retryDue();
          const r = await anchorer.anchorNow(log.committed.note);
          if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
          else if (r.state === 'done') {
            process.stdout.write(
              `anchored ${o.tenant} at size ${r.treeSize}: rekor entry ${r.rekorLogIndex}\n  anchored at ${r.attestedAt}, attested by ${r.attestedBy}\n  receipt ${r.receipt}\n`,
            );
          } else {
            process.stdout.write(`not anchored yet (${r.state}, ${r.attempts} attempts): ${r.lastError}\n  next attempt ${r.nextAttemptAt ?? 'none'}\n`);
          }
          if (r.state !== 'done') process.exitCode = 1;
        } finally {
          await anchorer.stop();
        }
      },
    );

  anchor
    .command('list')
    .description("list the tenant's anchoring jobs: done (with receipt), pending (with next attempt) or failed")
    .addOption(tenantOption())
    .option('--json', 'print as JSON lines')
    .action(async (o: { tenant: string; json?: boolean }) => {
      const paths = await stateLog(getRoots(), o.tenant);
      const jobs = await new Outbox(paths.stateDir).all();
      for (const j of jobs) {
        const receipt = j.receipt ? path.join(paths.historyDir, j.receipt) : null;
        if (o.json) {
          const { note: _note, signature: _sig, ...rest } = j;
          process.stdout.write(JSON.stringify({ ...rest, receipt }) + '\n');
        } else {
          const what =
            j.state === 'done'
              ? `rekor #${j.rekorLogIndex}${j.attestedAt ? ` anchored at ${j.attestedAt}` : ''} ${receipt}`
              : j.state === 'pending'
                ? `next ${j.nextAttemptAt ?? 'now'}: ${j.lastError ?? ''}`
                : `failed: ${j.lastError}`;
          process.stdout.write(`${String(j.treeSize).padStart(10)}  ${j.state.padEnd(7)}  ${j.rekor.apiVersion} ${j.rekor.url}  ${what}\n`);
        }
      }
      if (jobs.length === 0 && !o.json) process.stdout.write(`no anchors for ${o.tenant}\n`);
    });

  anchor
    .command('verify')
    .description(
      'verify a receipt offline: inclusion proof, Rekor checkpoint signature, attested time (v1 SET, v2 RFC 3161 timestamp), and that it anchors our checkpoint',
    )
    .argument('<file>', 'a receipt, checkpoints/<tenant>/anchors/<N>.sigstore.json')
    .addOption(rekorKeyOption())
    .option('--checkpoint <file>', 'the anchored checkpoint (default: the .checkpoint beside the receipt)')
    .option('--vkey <vkey...>', "our log's verifier key(s) (default: the vkeys file of the history the receipt sits in)")
    .option('--anchor-key <file>', 'require this anchoring public key (default: anchors/anchor-key.pem beside the receipts)')
    .option('--rekor-origin <origin>', 'the Rekor log origin (Ed25519 v2 log keys only)')
    .addOption(tsaChainOption())
    .option('--json', 'print the summary as JSON')
    .action(
      async (
        file: string,
        o: { rekorKey?: string; checkpoint?: string; vkey?: string[]; anchorKey?: string; rekorOrigin?: string; tsaChain?: string; json?: boolean },
      ) => {
        const abs = path.resolve(file);
        // A receipt under <history>/anchors/...: the history's vkeys and anchor key are the defaults.
        const parts = abs.split(path.sep);
        const at = parts.lastIndexOf(ANCHORS_DIR);
        const anchorsRoot = at > 0 ? parts.slice(0, at + 1).join(path.sep) : null;
        let logVerifiers: NoteVerifier[] | undefined;
        if (o.vkey) logVerifiers = o.vkey.map((k) => verifierFor(parseVerifierKey(k)));
        else if (anchorsRoot) {
          const v = await readIfExists(path.join(path.dirname(anchorsRoot), 'vkeys'));
          if (v) logVerifiers = parseVkeys(v.toString('utf8'));
        }
        let anchorPublicKey: string | undefined;
        if (o.anchorKey) anchorPublicKey = await fsp.readFile(path.resolve(o.anchorKey), 'utf8');
        else if (anchorsRoot) anchorPublicKey = (await readIfExists(path.join(anchorsRoot, ANCHOR_PUBLIC_KEY_FILE)))?.toString('utf8');
        const summary = await verifyReceipt(abs, {
          rekorPublicKey: await readPem(o.rekorKey, 'anchor verify'),
          ...(o.checkpoint ? { checkpointNote: await fsp.readFile(path.resolve(o.checkpoint)) } : {}),
          ...(logVerifiers ? { logVerifiers } : {}),
          ...(anchorPublicKey ? { anchorPublicKey } : {}),
          ...(o.rekorOrigin ? { rekorOrigin: o.rekorOrigin } : {}),
          ...(o.tsaChain ? { tsaCertChains: [await readFileNamed(o.tsaChain, 'anchor verify: --tsa-chain')] } : {}),
        });
        const checks = {
          ...summary,
          checkpointSignedByLog: !!logVerifiers,
          anchorKeyPinned: !!anchorPublicKey,
        };
        if (o.json) process.stdout.write(JSON.stringify(checks) + '\n');
        else {
          process.stdout.write(
            `ok: ${summary.origin} size ${summary.treeSize} (sha256 ${summary.digest}) is rekor entry ${summary.rekorLogIndex}\n` +
              `  inclusion proof in rekor tree of size ${summary.rekorTreeSize}, rekor checkpoint signature ok\n` +
              `  anchored at ${summary.attestedAt}, attested by ${summary.attestedBy} (${summary.timeEvidence === 'signed-entry-timestamp' ? "rekor's signed entry timestamp" : 'RFC 3161 timestamp'} ok)\n` +
              `  checkpoint signed by our log: ${logVerifiers ? 'yes' : 'not checked (no vkeys)'}; anchoring key: ${anchorPublicKey ? 'pinned' : 'from the entry'}\n`,
          );
        }
      },
    );

  return anchor;
}
