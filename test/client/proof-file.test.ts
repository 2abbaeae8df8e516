/**
 * c2sp.org/tlog-proof files: round trip against an engine-written log (sizes across tile
 * boundaries, with and without extra data, cosigned checkpoints), offline verification, and
 * every kind of tampering (flipped hash, wrong index, wrong entry, bad checkpoint signature,
 * malformed lines). Also `tlog proof`, `tlog proof verify` and `tlog monitor --once` through
 * commander.
 */
import { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerClientCommands } from '../../src/cli/client.js';
import { createTlogProof, formatTlogProof, parseTlogProof, verifyTlogProof, TLOG_PROOF_HEADER } from '../../src/client/proof-file.js';
import { dirSource, urlSource } from '../../src/client/source.js';
import { verifyCheckpointNote } from '../../src/client/verify.js';
import type { Log } from '../../src/log/log.js';
import type { DataRoots } from '../../src/tile-store/paths.js';
import { leafHash } from '../../src/merkle/hash.js';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { formatSignatureLine } from '../../src/note/note.js';
import { keyPair } from '../../src/note/signers.js';
import { parsePolicy } from '../../src/note/witness-policy.js';
import { entryOf, servedLog, type ServedLog, type StaticServer } from './helpers.js';

const ORIGIN = 'example.com/proofs';
const SIZES = [1, 256, 300, 513];
let dir: string;
let roots: DataRoots;
let log: Log;
let notes: string[];
let vkeys: string[];
let server: StaticServer;
let served: ServedLog | undefined;
const trust = () => ({ logKeys: vkeys, origin: ORIGIN });

beforeAll(async () => {
  served = await servedLog('tlog-proof-', ORIGIN, SIZES);
  ({ dir, roots, log, notes, vkeys, server } = served);
});
afterAll(() => served?.close());

describe('tlog-proof', () => {
  it('round-trips at every size and index boundary, and verifies offline', async () => {
    const src = dirSource(log.paths.tilesDir);
    for (let i = 0; i < SIZES.length; i++) {
      const cp = verifyCheckpointNote(notes[i]!, trust());
      const size = SIZES[i]!;
      for (const index of new Set([0, 1, 255, 256, size - 1].filter((x) => x < size))) {
        const text = await createTlogProof(src, cp, index);
        const p = parseTlogProof(text);
        expect(p.index).toBe(index);
        expect(p.checkpoint).toBe(notes[i]);
        expect(p.extra).toBeUndefined();
        expect(formatTlogProof(p)).toBe(text);
        const lines = text.split('\n');
        expect(lines[0]).toBe(TLOG_PROOF_HEADER);
        expect(lines[1]).toBe(`index ${index}`);
        expect(lines.slice(2, 2 + p.proof.length)).toEqual((await log.inclusionProof(index, size)).map((h) => Buffer.from(h).toString('base64')));
        expect(lines[2 + p.proof.length]).toBe('');
        const v = verifyTlogProof(text, { entry: entryOf(index) }, trust());
        expect(v.index).toBe(index);
        expect(Buffer.from(v.leafHash).equals(Buffer.from(leafHash(entryOf(index))))).toBe(true);
        verifyTlogProof(Buffer.from(text), { leafHash: leafHash(entryOf(index)) }, trust());
      }
    }
  });

  it('a size-1 tree has an empty proof: header, index, blank line, checkpoint', async () => {
    const cp = verifyCheckpointNote(notes[0]!, trust());
    const text = await createTlogProof(dirSource(log.paths.tilesDir), cp, 0);
    expect(text).toBe(`${TLOG_PROOF_HEADER}\nindex 0\n\n${notes[0]}`);
    verifyTlogProof(text, { entry: entryOf(0) }, trust());
  });

  it('carries extra data (unauthenticated) and a cosigned checkpoint verified against a policy', async () => {
    const w = keyPair(generatePrivateKey('witness.example', SignatureType.cosignatureV1));
    const note = notes[3]!;
    const cosigned =
      note + formatSignatureLine({ name: w.signer.name, keyID: w.signer.keyID, signature: w.signer.sign(note.slice(0, note.indexOf('\n\n') + 1)) });
    const policy = parsePolicy(`${vkeys.map((k) => `log ${k}`).join('\n')}\nwitness w ${w.vkey}\nquorum w\n`);
    const cp = verifyCheckpointNote(cosigned, { logKeys: [], policy });
    const text = await createTlogProof(urlSource(server.url), cp, 400, { extra: Buffer.from('hello') });
    expect(text.split('\n')[1]).toBe(`extra ${Buffer.from('hello').toString('base64')}`);
    const v = verifyTlogProof(text, { entry: entryOf(400) }, { logKeys: [], policy, origin: ORIGIN });
    expect(v.checkpoint.witnesses).toEqual(['w']);
    expect(Buffer.from(v.extra!).toString()).toBe('hello');
    // Without the cosignature the policy fails.
    const bare = text.replace(/\u2014 witness\.example .*\n$/, '');
    expect(() => verifyTlogProof(bare, { entry: entryOf(400) }, { logKeys: [], policy })).toThrow(/witness policy not satisfied/);
    // The extra data is not covered by anything: changing it still verifies (applications must not trust it).
    verifyTlogProof(text.replace(/^extra .*$/m, 'extra d29ybGQ='), { entry: entryOf(400) }, { logKeys: [], policy });
  });

  describe('tampering', () => {
    let text: string;
    const INDEX = 300;
    beforeAll(async () => {
      text = await createTlogProof(dirSource(log.paths.tilesDir), verifyCheckpointNote(notes[3]!, trust()), INDEX);
    });
    const verify =
      (t: string, entry = entryOf(INDEX)) =>
      () =>
        verifyTlogProof(t, { entry }, trust());

    it('the untouched proof verifies', () => {
      expect(verify(text)).not.toThrow();
    });

    it('a flipped bit in any proof hash fails', () => {
      const p = parseTlogProof(text);
      for (let i = 0; i < p.proof.length; i++) {
        const proof = p.proof.map((h, j) => (j === i ? Buffer.from(h).map((b, k) => (k === 7 ? b ^ 0x10 : b)) : h));
        expect(verify(formatTlogProof({ ...p, proof })), `hash ${i}`).toThrow(/not included at index 300/);
      }
    });

    it('a missing, extra or reordered hash fails', () => {
      const p = parseTlogProof(text);
      expect(verify(formatTlogProof({ ...p, proof: p.proof.slice(1) }))).toThrow(/not included/);
      expect(verify(formatTlogProof({ ...p, proof: [...p.proof, p.proof[0]!] }))).toThrow(/not included/);
      expect(verify(formatTlogProof({ ...p, proof: [p.proof[1]!, p.proof[0]!, ...p.proof.slice(2)] }))).toThrow(/not included/);
    });

    it('a wrong index fails, and so does an index outside the tree', () => {
      for (const index of [299, 301, 44, 0, 512]) expect(verify(text.replace(/^index 300$/m, `index ${index}`)), String(index)).toThrow(/not included/);
      expect(verify(text.replace(/^index 300$/m, 'index 513'))).toThrow(/not in the tree of size 513/);
    });

    it('a wrong entry or leaf hash fails', () => {
      expect(verify(text, entryOf(301))).toThrow(/not included/);
      expect(verify(text, Buffer.from('entry 300 '))).toThrow(/not included/);
      expect(() => verifyTlogProof(text, { leafHash: Buffer.from(entryOf(300)) }, trust())).toThrow(/leaf hash is 9 bytes/);
    });

    it('a bad checkpoint signature, a changed checkpoint, an unknown key or another origin fails', () => {
      const sigLine = text.split('\n').find((l) => l.startsWith('\u2014 '))!;
      const [dash, name, b64] = sigLine.split(' ') as [string, string, string];
      const blob = Buffer.from(b64, 'base64');
      blob[20]! ^= 1;
      expect(verify(text.replace(sigLine, `${dash} ${name} ${blob.toString('base64')}`))).toThrow(/does not verify/);
      expect(verify(text.replace(/^513$/m, '514'))).toThrow(/does not verify/);
      const other = keyPair(generatePrivateKey(ORIGIN, SignatureType.ed25519)).vkey;
      expect(() => verifyTlogProof(text, { entry: entryOf(INDEX) }, { logKeys: [other] })).toThrow(/no signature from the log/);
      expect(() => verifyTlogProof(text, { entry: entryOf(INDEX) }, { logKeys: vkeys, origin: 'example.com/other' })).toThrow(/origin/);
    });

    it('malformed files are refused as malformed', () => {
      const bad = [
        text.replace(TLOG_PROOF_HEADER, 'c2sp.org/tlog-proof@v2'),
        text.replace('index 300', 'index 0300'),
        text.replace('index 300', 'index: 300'),
        text.replace('index 300', 'extra !!\nindex 300'),
        text.replace(/\n\n/, '\n'), // no blank line before the checkpoint: hashes run into it
        text.split('\n\n')[0]!,
        text.replace(/^([A-Za-z0-9+/]{43}=)$/m, '$1$1'),
        text.replace(/^([A-Za-z0-9+/]{42})[A-Za-z0-9+/]=$/m, '$1='),
      ];
      for (const b of bad) expect(() => parseTlogProof(b), b.slice(0, 80)).toThrow(/malformed tlog-proof/);
    });
  });
});

describe('tlog proof / tlog proof verify / tlog monitor (commander)', () => {
  function program(): Command {
    const p = new Command().exitOverride();
    registerClientCommands(p, () => roots);
    return p;
  }
  async function run(args: string[]): Promise<{ out: string; err: string }> {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const std = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program().parseAsync(['node', 'tlog', ...args]);
      return { out: std.mock.calls.map((c) => String(c[0])).join(''), err: err.mock.calls.map((c) => String(c[0])).join('') };
    } finally {
      err.mockRestore();
      std.mockRestore();
    }
  }

  it('writes a proof for a local tenant and over HTTP, and checks it offline', async () => {
    const file = path.join(dir, 'e300.tlog-proof');
    const r = await run(['proof', '300', '--tenant', 'default', '--out', file]);
    expect(r.err).toMatch(/^entry 300 \(leaf hash .*\) is in example\.com\/proofs at size 513; proof written to/);
    const viaUrl = await run(['proof', '300', '--url', server.url, '--vkey', ...vkeys]);
    expect(viaUrl.out).toBe(readFileSync(file, 'utf8'));

    const entry = path.join(dir, 'e300');
    writeFileSync(entry, entryOf(300));
    const ok = await run(['proof', 'verify', file, '--entry', entry, '--vkey', ...vkeys]);
    expect(ok.out).toMatch(/^ok: entry 300 \(leaf hash .*\) is in example\.com\/proofs at size 513 root /);
    const json = await run(['proof', 'verify', file, '--leaf-hash', Buffer.from(leafHash(entryOf(300))).toString('base64'), '--vkey', vkeys[0]!, '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, index: 300, origin: ORIGIN, treeSize: 513 });

    writeFileSync(entry, entryOf(301));
    await expect(run(['proof', 'verify', file, '--entry', entry, '--vkey', ...vkeys])).rejects.toThrow(/not included at index 300/);
    await expect(run(['proof', 'verify', file, '--vkey', ...vkeys])).rejects.toThrow(/one of --entry and --leaf-hash/);
    await expect(run(['proof', 'verify', file, '--entry', entry])).rejects.toThrow(/no log key/);
    await expect(run(['proof', '513', '--tenant', 'default'])).rejects.toThrow(/not in the tree of size 513/);
    await expect(run(['proof', '01', '--tenant', 'default'])).rejects.toThrow(/canonical decimal/);
  });

  it('monitor --once streams the entries as JSON lines and keeps its state', async () => {
    const state = path.join(dir, 'monitor-state.json');
    const r = await run(['monitor', '--url', server.url, '--vkey', ...vkeys, '--state', state, '--once']);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; entry: string; leafHash: string });
    expect(lines).toHaveLength(513);
    expect(Buffer.from(lines[512]!.entry, 'base64').toString()).toBe('entry 512');
    expect(r.err).toMatch(/accepted example\.com\/proofs size 513 root .*, 513 new entries/);
    const again = await run(['monitor', '--url', server.url, '--vkey', ...vkeys, '--state', state, '--once']);
    expect(again.out).toBe('');
    expect(again.err).toMatch(/resuming at size 513/);
  });
});
