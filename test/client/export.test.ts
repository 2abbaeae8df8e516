/**
 * The VIP-STD-002 ledger view: an export of an engine-written log validates, each entry_hash
 * is the SHA-256 of the entry's RFC 8785 form, and a changed, dropped, reordered or re-chained
 * entry is reported at its line and index. Also the `tlog export` commands, through commander.
 */
import { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exportLedger, ledgerEntryHash, verifyLedger, type LedgerEntry } from '../../src/client/export.js';
import { canonicalize } from '../../src/client/jcs.js';
import { dirSource } from '../../src/client/source.js';
import { registerExportCommand } from '../../src/cli/export.js';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots } from '../../src/tile-store/paths.js';
import { leafHash, sha256 } from '../../src/merkle/hash.js';
import { encodeBase64 } from '../../src/note/note.js';
import { parseVerifierKey } from '../../src/note/keys.js';
import { verifierFor } from '../../src/note/signers.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';

const SIZE = 300;
let dir: string;
let roots: DataRoots;
let log: Log;
let entries: Uint8Array[];
let lines: string[];
let note: string;
let oldNote: string;
const verifiers = () => log.verifierKeys().map((k) => verifierFor(parseVerifierKey(k)));

beforeAll(async () => {
  ({ dir, roots } = tempDataRoots('tlog-export-'));
  log = await Log.init(logPaths(roots, 'default'), 'example.com/ledger');
  entries = Array.from({ length: SIZE }, (_, i) => Buffer.from(`record ${i}${i % 7 === 0 ? ' \u00e9\n"quoted"' : ''}`));
  await Promise.all(log.appendMany(entries.slice(0, 100)));
  oldNote = log.committed.note;
  await Promise.all(log.appendMany(entries.slice(100)));
  await log.close();
  note = log.committed.note;
  lines = [];
  await exportLedger(dirSource(log.paths.tilesDir), { verifiers: verifiers(), write: (l) => void lines.push(l) });
});
afterAll(() => removeDir(dir));

const parse = (l: string) => JSON.parse(l) as LedgerEntry;
/** Re-computes every hash from line `from` on, as someone forging the chain would. */
function rechain(ls: string[], from: number): string[] {
  const out = ls.slice();
  for (let i = from; i < out.length; i++) {
    const e = parse(out[i]!) as unknown as Record<string, unknown>;
    e.prev_hash = i === 0 ? null : parse(out[i - 1]!).entry_hash;
    e.entry_hash = ledgerEntryHash(e);
    out[i] = JSON.stringify(e);
  }
  return out;
}
function withData(l: string, data: Uint8Array, fixLeaf = false): string {
  const e = parse(l) as unknown as { proof: Record<string, unknown> };
  e.proof.data = encodeBase64(data);
  if (fixLeaf) e.proof.leaf_hash = encodeBase64(leafHash(data));
  return JSON.stringify(e);
}
const verify = (ls: string[], cp: string | null = note) => verifyLedger(ls, cp ? { checkpoint: cp, verifiers: verifiers() } : {});
const where = (r: Awaited<ReturnType<typeof verify>>) => r.problems.map((p) => `${p.line}:${p.index}`);

describe('exportLedger', () => {
  it('writes one chained entry per log entry, each proved against the checkpoint', async () => {
    expect(lines).toHaveLength(SIZE);
    let prev: string | null = null;
    lines.forEach((line, i) => {
      const e = parse(line);
      expect(Object.keys(e)).toEqual(['v', 'type', 'proof', 'prev_hash', 'entry_hash']);
      expect(e.v).toBe(1);
      expect(e.type).toBe('LEDGER_ENTRY');
      expect(e.prev_hash).toBe(prev);
      const { entry_hash, ...rest } = e;
      // entry_hash = hex SHA-256 of the JCS form of everything but entry_hash.
      expect(entry_hash).toBe(Buffer.from(sha256(Buffer.from(canonicalize(rest)))).toString('hex'));
      expect(e.proof).toMatchObject({
        log: 'example.com/ledger',
        index: i,
        tree_size: SIZE,
        root_hash: encodeBase64(log.committed.rootHash),
        leaf_hash: encodeBase64(leafHash(entries[i]!)),
      });
      expect(Buffer.from(e.proof.data, 'base64').equals(Buffer.from(entries[i]!))).toBe(true);
      prev = entry_hash;
    });
  });

  it('round-trips: the export validates against the signed checkpoint', async () => {
    const r = await verify(lines);
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, entries: SIZE, treeSize: SIZE, checkpointVerified: true, head: parse(lines[SIZE - 1]!).entry_hash });
    expect(r.signers).toHaveLength(2);
  });

  it('exports the tree of an older checkpoint, which validates against that checkpoint only', async () => {
    const old: string[] = [];
    const res = await exportLedger(dirSource(log.paths.tilesDir), { checkpoint: oldNote, verifiers: verifiers(), write: (l) => void old.push(l) });
    expect(res.treeSize).toBe(100);
    expect(old).toHaveLength(100);
    expect((await verify(old, oldNote)).ok).toBe(true);
    const against = await verify(old, note);
    expect(against.problems.map((p) => p.message)).toEqual([expect.stringMatching(/size 100, root .*is not the checkpoint's \(size 300/)]);
  });

  it('refuses to export a damaged log', async () => {
    const bundle = path.join(log.paths.tilesDir, 'tile/entries/000');
    const orig = readFileSync(bundle);
    const bad = Buffer.from(orig);
    bad[20]! ^= 1;
    writeFileSync(bundle, bad);
    try {
      await expect(exportLedger(dirSource(log.paths.tilesDir), { verifiers: verifiers(), write: () => {} })).rejects.toThrow(
        /entry \d+ does not match its hash in tile\/0/,
      );
    } finally {
      writeFileSync(bundle, orig);
    }
  });
});

describe('verifyLedger reports damage where it is', () => {
  it('a changed entry: its line and index, once', async () => {
    const ls = lines.slice();
    ls[41] = withData(ls[41]!, Buffer.from('forged record'));
    const r = await verify(ls);
    expect(r.ok).toBe(false);
    expect(new Set(where(r))).toEqual(new Set(['42:41']));
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/entry_hash .* does not match the entry's contents/),
      expect.stringMatching(/leaf_hash is not SHA-256\(0x00 \|\| data\)/),
    ]);
  });

  it('a changed entry with the chain recomputed: the proof gives it away', async () => {
    const a = rechain(((ls) => ((ls[41] = withData(ls[41]!, Buffer.from('forged'))), ls))(lines.slice()), 41);
    expect(where(await verify(a))).toEqual(['42:41']);
    const b = rechain(((ls) => ((ls[41] = withData(ls[41]!, Buffer.from('forged'), true)), ls))(lines.slice()), 41);
    const rb = await verify(b);
    expect(where(rb)).toEqual(['42:41']);
    expect(rb.problems[0]!.message).toMatch(/inclusion proof does not lead from leaf_hash to root_hash/);
  });

  it('a dropped entry', async () => {
    const ls = lines.filter((_, i) => i !== 99);
    const r = await verify(ls);
    expect(new Set(where(r))).toEqual(new Set(['100:100']));
    expect(r.problems.map((p) => p.message).join('\n')).toMatch(
      /prev_hash does not link to line 99[\s\S]*index 100 where 99 was expected: entry 99 is missing/,
    );
  });

  it('the first or the last entry dropped', async () => {
    const first = await verify(lines.slice(1));
    expect(first.problems[0]).toMatchObject({ line: 1, index: 1 });
    expect(first.problems.map((p) => p.message).join('\n')).toMatch(/first entry is not null[\s\S]*entry 0 is missing/);
    const last = await verify(lines.slice(0, -1));
    expect(last.problems).toEqual([
      { line: SIZE, index: SIZE - 1, message: expect.stringMatching(/ends at index 298, but the tree has 300 entries: entries 299 to 299 are missing/) },
    ]);
  });

  it('two entries swapped', async () => {
    const ls = lines.slice();
    [ls[10], ls[11]] = [ls[11]!, ls[10]!];
    const r = await verify(ls);
    expect(where(r)[0]).toBe('11:11');
    expect(r.problems.every((p) => p.line >= 11 && p.line <= 13)).toBe(true);
    expect(r.problems.map((p) => p.message).join('\n')).toMatch(/index 10 where 12 was expected: the entry is repeated or out of order/);
  });

  it('a consistent ledger of another tree passes the chain and proofs but fails against the signed checkpoint', async () => {
    const old: string[] = [];
    await exportLedger(dirSource(log.paths.tilesDir), { checkpoint: oldNote, verifiers: verifiers(), write: (l) => void old.push(l) });
    expect((await verify(old, null)).ok).toBe(true); // internally consistent, and no checkpoint to say otherwise
    const r = await verify(old, note);
    expect(r.ok).toBe(false);
  });

  it('garbage lines are reported, and the chain resumes after them', async () => {
    const ls = lines.slice();
    ls[5] = '{"v":1,';
    const r = await verify(ls);
    expect(where(r)).toEqual(['6:5']);
    expect(r.problems[0]!.message).toMatch(/^not JSON/);
  });
});

describe('tlog export (commander)', () => {
  function program(): Command {
    const p = new Command().exitOverride();
    registerExportCommand(p, () => roots);
    return p;
  }

  it('exports to a file with its checkpoint; verify --local and verify --checkpoint accept it; a damaged copy fails', async () => {
    const out = path.join(dir, 'ledger.jsonl');
    const cpOut = path.join(dir, 'ledger.checkpoint');
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const std = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program().parseAsync(['node', 'tlog', 'export', '--format', 'vip-ledger', '--out', out, '--checkpoint-out', cpOut]);
      expect(err.mock.calls.map((c) => String(c[0])).join('')).toMatch(/exported 300 entries of example\.com\/ledger at tree size 300/);
      expect(readFileSync(out, 'utf8')).toBe(lines.join('\n') + '\n');
      expect(readFileSync(cpOut, 'utf8')).toBe(note);

      await program().parseAsync(['node', 'tlog', 'export', 'verify', out, '--local']);
      expect(std.mock.calls.map((c) => String(c[0])).join('')).toMatch(
        /^ok: 300 ledger entries of example\.com\/ledger, chained and proved at tree size 300\n {2}root .* is the signed checkpoint's/m,
      );
      std.mockClear();
      const vkeys = path.join(roots.checkpointsRoot, 'default/vkeys');
      await program().parseAsync(['node', 'tlog', 'export', 'verify', out, '--checkpoint', cpOut, '--vkeys', vkeys]);
      expect(std.mock.calls.map((c) => String(c[0])).join('')).toMatch(/^ok: 300/);

      const older = path.join(dir, 'older.jsonl');
      await program().parseAsync(['node', 'tlog', 'export', '--format', 'vip-ledger', '--size', '100', '--out', older]);
      await program().parseAsync(['node', 'tlog', 'export', 'verify', older, '--local']);
      for (const size of ['0100', '+100', '9007199254740992']) {
        await expect(
          program().parseAsync(['node', 'tlog', 'export', '--format', 'vip-ledger', '--size', size, '--out', path.join(dir, 'never.jsonl')]),
        ).rejects.toThrow(`--size ${size} is not a tree size`);
      }
      expect(existsSync(path.join(dir, 'never.jsonl'))).toBe(false);

      const bad = readFileSync(out, 'utf8').split('\n');
      bad.splice(200, 1);
      const badFile = path.join(dir, 'bad.jsonl');
      writeFileSync(badFile, bad.join('\n'));
      std.mockClear();
      await expect(program().parseAsync(['node', 'tlog', 'export', 'verify', badFile, '--local'])).rejects.toThrow(/bad\.jsonl: 2 problem\(s\)/);
      expect(std.mock.calls.map((c) => String(c[0])).join('')).toMatch(/^line 201 \(index 201\): prev_hash does not link/m);

      await expect(program().parseAsync(['node', 'tlog', 'export'])).rejects.toThrow(/needs --format vip-ledger/);
      await expect(program().parseAsync(['node', 'tlog', 'export', '--format', 'vip-ledger', '--out', out])).rejects.toThrow(
        /ledger file \S+ already exists: export never overwrites a file/,
      );
    } finally {
      err.mockRestore();
      std.mockRestore();
    }
  });
});
