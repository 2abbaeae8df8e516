#!/usr/bin/env node
/**
 * The witness's own bin: `node dist/witness/main.js serve --config FILE --listen host:port
 * --data DIR`, and `vkeys` to print (creating on first use) the witness's verifier keys.
 * `tlog witness ...` can reuse witnessCommand().
 */
import { Command } from 'commander';
import { pathToFileURL } from 'node:url';
import { isTlogError } from '../src/errors.js';
import { DEFAULT_LISTEN, openWitness, runWitness } from './serve.js';

export function witnessCommand(name = 'tlog-witness'): Command {
  const program = new Command(name).description(
    'A c2sp.org/tlog-witness service: cosigns checkpoints of configured logs (Ed25519 cosignature/v1 and ML-DSA-44).',
  );

  program
    .command('serve')
    .description('serve POST /add-checkpoint and GET /<hex sha256(origin)>/checkpoint')
    .requiredOption('--config <file>', 'JSON config: {"name", "logs": [{"origin", "keys": [vkey...]}], "mldsa44"?, "data"?}')
    .option('--listen <host:port>', 'address to listen on', DEFAULT_LISTEN)
    .option('--data <dir>', 'data directory (keys, state, evidence); overrides "data" in the config')
    .option('--no-mldsa44', 'reply with the Ed25519 cosignature only')
    .action(async (o: { config: string; listen: string; data?: string; mldsa44: boolean }) => {
      const w = await runWitness({ config: o.config, listen: o.listen, dataDir: o.data, mldsa44: o.mldsa44 ? undefined : false });
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.stderr.write('stopping: finishing requests in flight\n');
          w.close().then(resolve, resolve);
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });

  program
    .command('vkeys')
    .description("print the witness's verifier keys (creating its keys on first use)")
    .requiredOption('--config <file>', 'JSON config')
    .option('--data <dir>', 'data directory; overrides "data" in the config')
    .action(async (o: { config: string; data?: string }) => {
      const { witness, lock } = await openWitness({ config: o.config, dataDir: o.data, log: () => {} });
      lock.release();
      process.stdout.write(`${witness.keys.vkeys.cosignatureV1}\n${witness.keys.vkeys.mldsa44}\n`);
    });

  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await witnessCommand().parseAsync(argv);
  } catch (e) {
    process.stderr.write(`tlog-witness: ${isTlogError(e) ? e.message : ((e as Error)?.stack ?? String(e))}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
