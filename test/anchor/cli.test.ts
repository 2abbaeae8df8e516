/** `tlog anchor now | list | verify`, run in-process on a commander program of their own. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { registerAnchorCommands } from '../../src/cli/anchor.js';
import type { FakeRekorV1 } from './fake-rekor-v1.js';
import { downRekorV1AndLog, upRekorV1AndLog, type Fixture } from './helpers.js';

let rekor: FakeRekorV1;
let f: Fixture;
let keyFile: string;

beforeEach(async () => ({ rekor, f, keyFile } = await upRekorV1AndLog({ tenant: 'cli', entries: 2, forAnotherProcess: true })));

afterEach(async () => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
  await downRekorV1AndLog({ rekor, f });
});

async function tlog(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerAnchorCommands(program, () => f.roots);
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

describe('tlog anchor', () => {
  it('now, list, verify; verify fails on a tampered receipt', async () => {
    const now = await tlog('anchor', 'now', '--tenant', 'cli', '--rekor-url', rekor.url, '--rekor-key', keyFile, '--json');
    const rec = JSON.parse(now) as { state: string; receipt: string; treeSize: number };
    expect(rec).toMatchObject({ state: 'done', treeSize: 2 });
    expect(rekor.entries).toHaveLength(1);

    const list = await tlog('anchor', 'list', '--tenant', 'cli');
    expect(list).toMatch(/^\s+2 {2}done {5}v1 http:\/\/127\.0\.0\.1:\d+ {2}rekor #0 anchored at \S+Z \S*002\.sigstore\.json\n$/);

    // Offline: the vkeys and anchoring key of the history the receipt sits in are found by themselves.
    const ok = JSON.parse(await tlog('anchor', 'verify', rec.receipt, '--rekor-key', keyFile, '--json'));
    expect(ok).toMatchObject({ treeSize: 2, rekorLogIndex: 0, signedEntryTimestamp: true, checkpointSignedByLog: true, anchorKeyPinned: true });
    expect(await tlog('anchor', 'verify', rec.receipt, '--rekor-key', keyFile)).toMatch(/^ok: example\.com\/cli size 2/);

    const j = JSON.parse(readFileSync(rec.receipt, 'utf8'));
    j.verificationMaterial.tlogEntries[0].logIndex = '1';
    writeFileSync(rec.receipt, JSON.stringify(j));
    await expect(tlog('anchor', 'verify', rec.receipt, '--rekor-key', keyFile)).rejects.toThrow(/anchor receipt/);
    // A second `now` with the tree unchanged does not upload again.
    await tlog('anchor', 'now', '--tenant', 'cli', '--rekor-url', rekor.url, '--rekor-key', keyFile);
    expect(rekor.requests.filter((q) => q.method === 'POST')).toHaveLength(1);
  });

  it('now with Rekor down says so and exits non-zero; a later now finishes the job', async () => {
    await rekor.down();
    const out = await tlog('anchor', 'now', '--tenant', 'cli', '--rekor-url', rekor.url, '--rekor-key', keyFile, '--timeout', '500');
    expect(out).toMatch(/^not anchored yet \(pending, 1 attempts\)/);
    expect(process.exitCode).toBe(1);
    await rekor.up();
    expect(await tlog('anchor', 'now', '--tenant', 'cli', '--rekor-url', rekor.url, '--rekor-key', keyFile)).toMatch(
      /^anchored cli at size 2: rekor entry 0\n {2}anchored at \S+Z, attested by rekor http:\/\/127\.0\.0\.1:\d+\n/,
    );
    expect(rekor.entries).toHaveLength(1);
  });

  it('Rekor v2 needs a TSA, given by URL and chain file; the chain must hold', async () => {
    const v2 = ['anchor', 'now', '--tenant', 'cli', '--rekor-version', 'v2', '--rekor-url', rekor.url, '--rekor-key', keyFile];
    await expect(tlog(...v2)).rejects.toThrow(/Rekor v2 gives no signed time: give --tsa-url URL and --tsa-chain FILE/);
    await expect(tlog(...v2, '--tsa-url', 'http://127.0.0.1:9')).rejects.toThrow(/--tsa-chain/);
    await expect(tlog(...v2, '--tsa-url', 'http://127.0.0.1:9', '--tsa-chain', path.join(f.dir, 'none.pem'))).rejects.toThrow(/--tsa-chain: no file/);
    writeFileSync(path.join(f.dir, 'bad.pem'), readFileSync(path.join(__dirname, 'fixtures/tsa/eku-none.pem')));
    await expect(tlog(...v2, '--tsa-url', 'http://127.0.0.1:9', '--tsa-chain', path.join(f.dir, 'bad.pem'))).rejects.toThrow(/bad TSA certificate chain/);
    // A v1 log takes no TSA.
    writeFileSync(path.join(f.dir, 'tsa.pem'), readFileSync(path.join(__dirname, 'fixtures/tsa/chain.pem')));
    await expect(
      tlog(
        'anchor',
        'now',
        '--tenant',
        'cli',
        '--rekor-url',
        rekor.url,
        '--rekor-key',
        keyFile,
        '--tsa-url',
        'http://127.0.0.1:9',
        '--tsa-chain',
        path.join(f.dir, 'tsa.pem'),
      ),
    ).rejects.toThrow(/tsa is for Rekor v2/);
    expect(rekor.requests).toHaveLength(0);
  });

  it('needs the Rekor key', async () => {
    const saved = process.env.TLOG_REKOR_KEY;
    delete process.env.TLOG_REKOR_KEY;
    try {
      await expect(tlog('anchor', 'now', '--tenant', 'cli', '--rekor-url', rekor.url)).rejects.toThrow(/--rekor-key/);
    } finally {
      if (saved !== undefined) process.env.TLOG_REKOR_KEY = saved;
    }
  });
});
