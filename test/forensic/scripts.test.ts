/**
 * The forensic scripts of docs/forensic, run in two userlands (busybox alone; dash with gawk
 * --posix and GNU coreutils) on logs the engine wrote: every leaf hash and the recomputed root
 * must equal the engine's, with the same output in both, and a single flipped byte in a bundle,
 * a tile or the checkpoint must be reported (non-zero exit, a readable reason). They fail
 * closed: a malformed or empty value, or a tool that fails or prints nothing, is never "ok".
 */
import { cpSync, readFileSync, writeFileSync, readdirSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/merkle/hash.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { encodeBase64, formatSignatureLine, parseNote } from '../../src/note/note.js';
import { keyPair, subtreeV1Message } from '../../src/note/signers.js';
import { busyboxShell, cleanupShells, dashGnuShell, makeLog, parseLeaves, parseRecomputed, runScript, withStub, type Shell, type TestLog } from './helpers.js';
import { flipBits } from '../helpers/file-bytes.js';
import { toHex } from '../vectors.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const logs = new Map<number, TestLog>();
const SIZES = [0, 1, 255, 256, 300, 1000];
const scratch: string[] = [];
const SHELLS: Shell[] = [busyboxShell(), dashGnuShell()];
const [busybox, dashGnu] = SHELLS as [Shell, Shell];

/** A log appended one entry per batch: the history has every size, most of whose partials the log collected. */
let collected: TestLog | undefined;

beforeAll(async () => {
  for (const n of SIZES) logs.set(n, await makeLog(n));
  collected = await makeLog(90, 'example.com/forensic', 1);
});
afterAll(() => {
  for (const l of logs.values()) removeDir(l.root);
  if (collected) removeDir(collected.root);
  for (const d of scratch) removeDir(d);
  cleanupShells();
});

/** A copy of a log's public files to damage. */
function copyOf(l: TestLog): { tiles: string; vkeys: string } {
  const d = makeTempDir('tlog-forensic-bad-');
  scratch.push(d);
  cpSync(l.tilesDir, path.join(d, 'tiles'), { recursive: true });
  return { tiles: path.join(d, 'tiles'), vkeys: path.join(l.historyDir, 'vkeys') };
}

describe.each(SHELLS)('$name', (sh) => {
  describe.each(SIZES)('a log of %i entries', (size) => {
    it("tlog-leaves.sh gives every entry the engine's leaf hash, matching tile/0", () => {
      const l = logs.get(size)!;
      const r = runScript(sh, 'tlog-leaves.sh', [l.tilesDir]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const got = parseLeaves(r.stdout);
      expect(got.size).toBe(size);
      l.entries.forEach((e, i) => expect(got.get(i), `entry ${i}`).toBe(toHex(leafHash(e))));
    });

    it("tlog-root.sh recomputes the engine's root from the tiles", () => {
      const l = logs.get(size)!;
      const r = runScript(sh, 'tlog-root.sh', ['-e', l.tilesDir]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(parseRecomputed(r.stdout)).toBe(encodeBase64(l.log.committed.rootHash));
      expect(r.stdout).toMatch(/^ok: the tiles hash to the checkpoint's root$/m);
    });

    it('tlog-checkpoint.sh decodes the checkpoint and verifies its Ed25519 signature', () => {
      const l = logs.get(size)!;
      const r = runScript(sh, 'tlog-checkpoint.sh', ['-k', path.join(l.historyDir, 'vkeys'), path.join(l.tilesDir, 'checkpoint')]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`line 2  tree size  ${size} entries`);
      expect(r.stdout).toContain(`= hex ${toHex(l.log.committed.rootHash)}`);
      expect(r.stdout).toMatch(/verify +ok: openssl pkeyutl -verify -rawin: Ed25519 signature verified/);
      expect(r.stdout).toMatch(/2420-byte ML-DSA-44 signature \(subtree cosignature, type 0x06\)/);
      expect(r.stdout.match(/key ID ok/g)).toHaveLength(2);
    });
  });

  describe('tlog-checkpoint.sh', () => {
    it('explains the ML-DSA-44 cosignature: its timestamp, and a message and key that verify with FIPS 204', () => {
      const l = logs.get(300)!;
      const out = makeTempDir('tlog-forensic-sig-');
      scratch.push(out);
      const note = readFileSync(path.join(l.tilesDir, 'checkpoint'), 'utf8');
      const parsed = parseNote(note);
      const cp = parseCheckpoint(parsed.text);
      const r = runScript(sh, 'tlog-checkpoint.sh', ['-k', path.join(l.historyDir, 'vkeys'), '-d', out, path.join(l.tilesDir, 'checkpoint')]);
      expect(r.code).toBe(0);
      const ts = Number(Buffer.from(parsed.signatures[1]!.signature.subarray(0, 8)).readBigUInt64BE());
      const iso = new Date(ts * 1000).toISOString().replace(/\.000Z$/, 'Z');
      expect(r.stdout).toContain(`timestamp  ${ts} = ${iso}`);
      expect(r.stdout).toMatch(/NOT VERIFIED: ML-DSA-44 needs a FIPS 204 implementation \(OpenSSL >= 3.5/);
      // What the script wrote for other tools is exactly the subtree/v1 message, signature and key.
      const msg = readFileSync(path.join(out, 'sig2.msg'));
      expect(toHex(msg)).toBe(
        toHex(subtreeV1Message({ cosignerName: cp.origin, timestamp: ts, origin: cp.origin, start: 0, end: cp.treeSize, hash: cp.rootHash })),
      );
      const der = readFileSync(path.join(out, 'sig2.pub.der'));
      expect(der.length).toBe(22 + 1312);
      expect(ml_dsa44.verify(readFileSync(path.join(out, 'sig2.sig')), msg, der.subarray(22))).toBe(true);
      expect(readFileSync(path.join(out, 'sig1.msg'), 'utf8')).toBe(parsed.text);
    });

    it('verifies an Ed25519 cosignature (0x04) and shows its time; ignores unknown keys', () => {
      const l = logs.get(256)!;
      const d = copyOf(l);
      const note = readFileSync(path.join(d.tiles, 'checkpoint'), 'utf8');
      const witness = keyPair(generatePrivateKey('witness.example/w1', SignatureType.cosignatureV1), () => 1_700_000_000);
      const grease = keyPair(generatePrivateKey('grease.example', SignatureType.ed25519));
      const text = parseNote(note).text;
      const lines = [witness, grease].map((k) => formatSignatureLine({ name: k.signer.name, keyID: k.signer.keyID, signature: k.signer.sign(text) }));
      const cpFile = path.join(d.tiles, 'checkpoint');
      writeFileSync(cpFile, note + lines.join(''));
      const r = runScript(sh, 'tlog-checkpoint.sh', ['-k', d.vkeys, '-k', witness.vkey, cpFile]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('timestamp  1700000000 = 2023-11-14T22:13:20Z');
      expect(r.stdout).toMatch(/signature 3: key name witness.example\/w1[\s\S]*?cosignature\/v1[\s\S]*?Ed25519 signature verified/);
      expect(r.stdout).toMatch(/signature 4: key name grease.example[\s\S]*?no verifier key has this name and key ID: ignored/);
      expect(r.stdout).toMatch(/^ok: 2 signature\(s\) verified, 1 could not be checked here$/m);
    });

    it('matches a key ID that reads as a number (like 504e3370) as a string, and no other ID that equals it as a number', () => {
      // awk compares two number-looking strings as numbers: "504e3370" is inf and "01e00000" is 1,
      // the same as "00000001". A key ID is 4 bytes, never a number.
      const l = logs.get(256)!;
      const d = copyOf(l);
      const note = readFileSync(path.join(d.tiles, 'checkpoint'), 'utf8');
      const text = parseNote(note).text;
      let numeric: ReturnType<typeof keyPair> | undefined;
      for (let i = 0; !numeric; i++) {
        const k = keyPair(generatePrivateKey(`w${i}.example`, SignatureType.cosignatureV1), () => 1_700_000_000);
        const kid = k.signer.keyID.toString(16).padStart(8, '0');
        if (/^[0-9]+e[0-9]+$/.test(kid) && Number(kid) === Number.POSITIVE_INFINITY) numeric = k;
      }
      const id = numeric.signer.keyID.toString(16).padStart(8, '0');
      const line = formatSignatureLine({ name: numeric.signer.name, keyID: numeric.signer.keyID, signature: numeric.signer.sign(text) });
      const cpFile = path.join(d.tiles, 'checkpoint');
      writeFileSync(cpFile, note + line);
      const r = runScript(sh, 'tlog-checkpoint.sh', ['-k', d.vkeys, '-k', numeric.vkey, cpFile]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`key ID ok: SHA-256(name || 0x0A || type || key) starts with ${id}`);
      expect(r.stdout).toMatch(/signature 3: key name w\d+\.example[\s\S]*?cosignature\/v1[\s\S]*?Ed25519 signature verified/);
      // Another ID that is the same number (both are inf to awk) is another key: ignored.
      const forgedID = id === '9e999999' ? '8e999999' : '9e999999';
      const forged = formatSignatureLine({ name: numeric.signer.name, keyID: Number.parseInt(forgedID, 16), signature: numeric.signer.sign(text) });
      writeFileSync(cpFile, note + forged);
      const f = runScript(sh, 'tlog-checkpoint.sh', ['-k', d.vkeys, '-k', numeric.vkey, cpFile]);
      expect(f.stdout).toMatch(/signature 3: key name w\d+\.example[\s\S]*?no verifier key has this name and key ID: ignored/);
      expect(f.stdout).not.toMatch(/signature 3:[\s\S]*?signature verified/);
    });

    it('exits 3 when no key is known, and 1 on a note that is not a note', () => {
      const l = logs.get(1)!;
      const r = runScript(sh, 'tlog-checkpoint.sh', ['-k', '/dev/null', path.join(l.tilesDir, 'checkpoint')]);
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^NOT VERIFIED: no signature from a known key could be checked/m);
      const d = copyOf(l);
      writeFileSync(path.join(d.tiles, 'checkpoint'), 'example.com/x\n1\nAAAA\n');
      const bad = runScript(sh, 'tlog-checkpoint.sh', ['-k', d.vkeys, path.join(d.tiles, 'checkpoint')]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/malformed note: no blank line/);
    });
  });

  describe('older checkpoints, other tools', () => {
    it('tlog-root.sh checks every checkpoint in the history against the tiles', () => {
      const l = logs.get(1000)!;
      const dir = path.join(l.historyDir, 'log');
      const files = readdirSync(dir, { recursive: true })
        .map(String)
        .filter((f) => statSync(path.join(dir, f)).isFile());
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) {
        const cpFile = path.join(dir, f);
        const cp = parseCheckpoint(parseNote(readFileSync(cpFile, 'utf8')).text);
        const r = runScript(sh, 'tlog-root.sh', ['-c', cpFile, l.tilesDir]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(parseRecomputed(r.stdout)).toBe(encodeBase64(cp.rootHash));
      }
    });

    it('tlog-root.sh and tlog-leaves.sh check older checkpoints whose partials the log collected, from the wider ones', () => {
      const l = collected!;
      const partials = readdirSync(path.join(l.tilesDir, 'tile/0/000.p')).map(Number);
      for (const size of [1, 10, 50, 89, 90]) {
        const cpFile = path.join(l.historyDir, 'log', String(size).padStart(3, '0'));
        const cp = parseCheckpoint(parseNote(readFileSync(cpFile, 'utf8')).text);
        expect(cp.treeSize).toBe(size);
        const r = runScript(sh, 'tlog-root.sh', ['-c', cpFile, l.tilesDir]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(parseRecomputed(r.stdout)).toBe(encodeBase64(cp.rootHash));
        // The narrowest wider partial on disk stands in for a gone one.
        const from = Math.min(...partials.filter((w) => w > size));
        if (!partials.includes(size)) expect(r.stdout).toContain(`note: the partial tile is gone, using the first ${size} hashes of tile/0/000.p/${from}`);
      }
      expect(partials).not.toContain(10);
      const leaves = runScript(sh, 'tlog-leaves.sh', ['-c', path.join(l.historyDir, 'log', '010'), l.tilesDir]);
      expect(leaves.code, leaves.stdout + leaves.stderr).toBe(0);
      expect(leaves.stdout).toContain(
        `note: tile/entries/000.p/10 is gone, reading the first 10 entries of tile/entries/000.p/${Math.min(...partials.filter((w) => w > 10))}`,
      );
      expect([...parseLeaves(leaves.stdout).keys()]).toEqual(Array.from({ length: 10 }, (_, i) => i));
    });

    it('hashes with openssl dgst when told to (no sha256sum)', () => {
      const l = logs.get(300)!;
      const leaves = runScript(sh, 'tlog-leaves.sh', [l.tilesDir, '250', '299'], { TLOG_SHA256: 'openssl' });
      expect(leaves.code).toBe(0);
      const got = parseLeaves(leaves.stdout);
      expect([...got.keys()]).toEqual(Array.from({ length: 50 }, (_, i) => 250 + i));
      for (const [i, h] of got) expect(h).toBe(toHex(leafHash(l.entries[i]!)));
      const root = runScript(sh, 'tlog-root.sh', [l.tilesDir], { TLOG_SHA256: 'openssl' });
      expect(parseRecomputed(root.stdout)).toBe(encodeBase64(l.log.committed.rootHash));
    });

    it('tlog-entries.sh lists a bundle with indexes, in text and hex; tlog-locate.sh names the files', () => {
      const l = logs.get(300)!;
      const r = runScript(sh, 'tlog-entries.sh', ['-x', path.join(l.tilesDir, 'tile/entries/001.p/44')]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(44);
      lines.forEach((line, k) => {
        const e = l.entries[256 + k]!;
        expect(line).toBe(`${256 + k} ${e.length} ${toHex(e)}`);
      });
      const t = runScript(sh, 'tlog-entries.sh', [path.join(l.tilesDir, 'tile/entries/000')]);
      expect(t.code).toBe(0);
      const printable = (e: Uint8Array) =>
        [...e].map((b) => (b === 0x5c ? '\\\\' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
      expect(t.stdout).toBe(
        l.entries
          .slice(0, 256)
          .map((e, i) => `${i} ${e.length} ${printable(e)}\n`)
          .join(''),
      );
      const loc = runScript(sh, 'tlog-locate.sh', ['65600', '70000']);
      expect(loc.stdout).toContain('bundle      tile/entries/256  (entry 64 of 256');
      expect(loc.stdout).toContain('leaf hash   tile/0/256  (hash 64');
      expect(loc.stdout).toContain('level 1     tile/1/001.p/17');
    });
  });

  describe('damage is reported', () => {
    it('a flipped byte in an entry: tlog-leaves.sh names the entry, tlog-root.sh -e fails', () => {
      const l = logs.get(300)!;
      const d = copyOf(l);
      const bundle = path.join(d.tiles, 'tile/entries/001.p/44');
      // Entry 256 starts at byte 0: length (2 bytes), then "entry 256 ...".
      flipBits(bundle, 5);
      const r = runScript(sh, 'tlog-leaves.sh', [d.tiles]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(
        /^256 [0-9a-f]{64} MISMATCH: entry 0 of tile\/entries\/001\.p\/44 hashes to this, but hash 0 of tile\/0\/001\.p\/44 is [0-9a-f]{64}$/m,
      );
      expect(r.stdout.match(/MISMATCH/g)).toHaveLength(1);
      expect(r.stderr).toMatch(/FAIL: 1 problem\(s\)/);
      const root = runScript(sh, 'tlog-root.sh', ['-e', d.tiles]);
      expect(root.code).toBe(1);
      expect(root.stdout).toMatch(/ok: the tiles hash to the checkpoint's root/); // the tiles are intact
      expect(root.stdout).toMatch(/^256 .* MISMATCH/m);
    });

    it('a flipped byte in a length prefix: the bundle is malformed', () => {
      const d = copyOf(logs.get(300)!);
      flipBits(path.join(d.tiles, 'tile/entries/000'), 1, 0x40);
      const r = runScript(sh, 'tlog-leaves.sh', [d.tiles, '0', '10']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/FAIL: bundle tile\/entries\/000 (is malformed|holds \d+ entries)/);
    });

    it('a flipped byte in a full tile: tlog-root.sh names it and the tile above', () => {
      const d = copyOf(logs.get(1000)!);
      flipBits(path.join(d.tiles, 'tile/0/001'), 100);
      const r = runScript(sh, 'tlog-root.sh', [d.tiles]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(
        /^FAIL: tile\/0\/001 hashes to [0-9a-f]{64}, but hash 1 of tile\/1\/000\.p\/3 is [0-9a-f]{64}: one of the two tiles is damaged$/m,
      );
      expect(r.stderr).toMatch(/FAIL: 1 problem/);
      const leaves = runScript(sh, 'tlog-leaves.sh', ['-q', d.tiles, '256', '511']);
      expect(leaves.code).toBe(1);
      expect(leaves.stdout).toMatch(/^259 [0-9a-f]{64} MISMATCH/m); // byte 100 is in hash 3
    });

    it('a flipped byte in a partial tile or in the level-1 tile: the root does not match', () => {
      for (const [rel, off] of [
        ['tile/0/003.p/232', 31],
        ['tile/1/000.p/3', 64],
      ] as const) {
        const l = logs.get(1000)!;
        const d = copyOf(l);
        flipBits(path.join(d.tiles, rel), off);
        const r = runScript(sh, 'tlog-root.sh', [d.tiles]);
        expect(r.code, rel).toBe(1);
        expect(r.stdout, rel).toMatch(/^FAIL: the tiles hash to \S+, the checkpoint says \S+$/m);
      }
    });

    it('a flipped byte in the checkpoint: the signature fails and the root does not match', () => {
      const l = logs.get(300)!;
      const d = copyOf(l);
      const cpFile = path.join(d.tiles, 'checkpoint');
      const note = readFileSync(cpFile, 'utf8');
      // Flip one character of the root line into another base64 character.
      const at = note.indexOf('\n', note.indexOf('\n') + 1) + 5;
      flipBits(cpFile, at, note[at] === 'A' ? 0x02 : 0x01);
      const after = readFileSync(cpFile, 'utf8');
      expect(/^[A-Za-z0-9+/]$/.test(after[at]!)).toBe(true);
      const c = runScript(sh, 'tlog-checkpoint.sh', ['-k', d.vkeys, cpFile]);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/FAIL: the Ed25519 signature does NOT verify/);
      expect(c.stderr).toMatch(/FAIL: .*checkpoint: 1 problem/);
      const r = runScript(sh, 'tlog-root.sh', [d.tiles]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^FAIL: the tiles hash to \S+, the checkpoint says \S+$/m);
    });

    it('a flipped byte in a signature or a key ID is reported', () => {
      const l = logs.get(300)!;
      const d = copyOf(l);
      const cpFile = path.join(d.tiles, 'checkpoint');
      const note = readFileSync(cpFile, 'utf8');
      const sigLine = note.indexOf('\u2014 ');
      const b64 = note.indexOf(' ', sigLine + 2) + 1;
      // Byte 10 of the base64: inside the Ed25519 signature (past the 4-byte key ID).
      const at = Buffer.byteLength(note.slice(0, b64 + 10));
      // Replace the character with another base64 character ('A', or 'B' if it is 'A'): flipping
      // bits could make it a non-base64 character such as '.', a different failure.
      const bytes = readFileSync(cpFile);
      bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
      writeFileSync(cpFile, bytes);
      const c = runScript(sh, 'tlog-checkpoint.sh', ['-k', d.vkeys, cpFile]);
      expect(c.code).toBe(1);
      expect(c.stdout).toMatch(/does NOT verify/);
    });
  });
});

describe('the same output in both userlands', () => {
  it('every script prints the same bytes under busybox and under dash + GNU on a good log', () => {
    const l = logs.get(1000)!;
    const runs: [string, string[]][] = [
      ['tlog-root.sh', ['-e', l.tilesDir]],
      ['tlog-leaves.sh', [l.tilesDir]],
      ['tlog-checkpoint.sh', ['-k', path.join(l.historyDir, 'vkeys'), path.join(l.tilesDir, 'checkpoint')]],
      ['tlog-entries.sh', [path.join(l.tilesDir, 'tile/entries/003.p/232')]],
      ['tlog-entries.sh', ['-x', path.join(l.tilesDir, 'tile/entries/000')]],
      ['tlog-locate.sh', ['65600', '70000']],
    ];
    for (const [script, args] of runs) {
      const a = runScript(busybox, script, args);
      const b = runScript(dashGnu, script, args);
      expect(a.code, `${script} under busybox: ${a.stderr}`).toBe(0);
      expect(b.code, `${script} under dash + GNU: ${b.stderr}`).toBe(0);
      expect(a.stdout.length, script).toBeGreaterThan(0);
      expect(a.stdout, script).toBe(b.stdout);
      expect(a.stderr, script).toBe(b.stderr);
    }
  });

  it('busybox without openssl: tlog-checkpoint.sh decodes and checks key IDs the same, and exits 3 (nothing verified)', () => {
    const l = logs.get(300)!;
    const args = ['-k', path.join(l.historyDir, 'vkeys'), path.join(l.tilesDir, 'checkpoint')];
    const bare = runScript(busyboxShell({ openssl: false }), 'tlog-checkpoint.sh', args);
    expect(bare.code).toBe(3);
    expect(bare.stdout).toMatch(/^NOT VERIFIED: no signature from a known key could be checked/m);
    expect(bare.stdout.match(/key ID ok/g)).toHaveLength(2);
    const full = runScript(dashGnu, 'tlog-checkpoint.sh', args);
    const decoded = (out: string) => out.split('\n').filter((line) => !/verif/i.test(line));
    expect(decoded(bare.stdout)).toEqual(decoded(full.stdout));
  });
});

/** A checkpoint file with its first three lines replaced (origin, size, root) and the rest kept. */
function withLines(note: string, f: (lines: string[]) => string[]): string {
  const blank = note.indexOf('\n\n');
  return f(note.slice(0, blank).split('\n')).join('\n') + note.slice(blank);
}

describe.each(SHELLS)('$name: fails closed', (sh) => {
  const damaged: [string, (note: string) => string][] = [
    ['an empty checkpoint', () => ''],
    ['only an origin line', (n) => n.slice(0, n.indexOf('\n') + 1)],
    ['cut inside the root line', (n) => n.slice(0, n.indexOf('\n', n.indexOf('\n') + 1) + 10)],
    ['an empty origin line', (n) => withLines(n, ([, s, r]) => ['', s!, r!])],
    ['an empty size line', (n) => withLines(n, ([o, , r]) => [o!, '', r!])],
    ['a size that is not a number', (n) => withLines(n, ([o, , r]) => [o!, 'abc', r!])],
    ['a size with a leading zero', (n) => withLines(n, ([o, s, r]) => [o!, `0${s}`, r!])],
    ['a negative size', (n) => withLines(n, ([o, s, r]) => [o!, `-${s}`, r!])],
    ['an empty root line', (n) => withLines(n, ([o, s]) => [o!, s!, ''])],
    ['a root that is not base64', (n) => withLines(n, ([o, s]) => [o!, s!, '!'.repeat(44)])],
    ['a root of 31 bytes', (n) => withLines(n, ([o, s]) => [o!, s!, Buffer.alloc(31, 7).toString('base64')])],
    ['a root of 33 bytes', (n) => withLines(n, ([o, s]) => [o!, s!, Buffer.alloc(33, 7).toString('base64')])],
  ];
  it.each(damaged)('%s: tlog-root.sh, tlog-leaves.sh and tlog-checkpoint.sh exit non-zero and never say ok', (_what, damage) => {
    const l = logs.get(300)!;
    const d = copyOf(l);
    const cpFile = path.join(d.tiles, 'checkpoint');
    writeFileSync(cpFile, damage(readFileSync(cpFile, 'utf8')));
    for (const [script, args] of [
      ['tlog-root.sh', [d.tiles]],
      ['tlog-root.sh', ['-e', d.tiles]],
      ['tlog-leaves.sh', [d.tiles]],
      ['tlog-checkpoint.sh', ['-k', d.vkeys, cpFile]],
    ] as const) {
      const r = runScript(sh, script, [...args]);
      expect(r.code, `${script}: ${r.stdout}${r.stderr}`).not.toBe(0);
      expect(r.code, script).not.toBeNull();
      expect(r.stdout, script).not.toMatch(/^ok/m);
      expect(r.stdout + r.stderr, script).toMatch(/FAIL|NOT VERIFIED/);
    }
  });

  it('a tile cut short, a missing tile, a bundle cut short: exit 1 with the file named', () => {
    const l = logs.get(1000)!;
    const cut = copyOf(l);
    truncateSync(path.join(cut.tiles, 'tile/0/001'), 8191);
    const r1 = runScript(sh, 'tlog-root.sh', [cut.tiles]);
    expect(r1.code).toBe(1);
    expect(r1.stdout).toMatch(/^FAIL: tile tile\/0\/001 is not a whole number of 32-byte hashes$/m);
    const gone = copyOf(l);
    unlinkSync(path.join(gone.tiles, 'tile/0/003.p/232'));
    const r2 = runScript(sh, 'tlog-root.sh', [gone.tiles]);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/^FAIL: tile tile\/0\/003\.p\/232 is missing$/m);
    const short = copyOf(l);
    const bundle = path.join(short.tiles, 'tile/entries/003.p/232');
    truncateSync(bundle, statSync(bundle).size - 1);
    const r3 = runScript(sh, 'tlog-leaves.sh', [short.tiles, '768', '999']);
    expect(r3.code).toBe(1);
    expect(r3.stdout).toMatch(/^FAIL: bundle tile\/entries\/003\.p\/232 is malformed: truncated/m);
    expect(r3.stdout).not.toMatch(/^ok/m);
  });

  // Tools that misbehave without saying so: they succeed and print nothing (or garbage). The
  // scripts must notice, not compare an empty value with another empty value.
  const stubs: [string, string][] = [
    ['awk', 'exit 0'],
    ['awk', 'exit 2'],
    ['sha256sum', 'exit 0'],
    ['sha256sum', 'for f in "$@"; do echo "0000  $f"; done'],
    ['od', 'exit 0'],
    ['od', 'echo " zz zz"'],
  ];
  it.each(stubs)('%s replaced by `%s`: no script says ok', (tool, body) => {
    const l = logs.get(300)!;
    const broken = withStub(sh, tool, body);
    for (const [script, args] of [
      ['tlog-root.sh', ['-e', l.tilesDir]],
      ['tlog-leaves.sh', [l.tilesDir]],
      ['tlog-checkpoint.sh', ['-k', path.join(l.historyDir, 'vkeys'), path.join(l.tilesDir, 'checkpoint')]],
      // (tlog-entries.sh does not hash.)
      ...(tool === 'sha256sum' ? [] : ([['tlog-entries.sh', [path.join(l.tilesDir, 'tile/entries/000')]]] as const)),
    ] as const) {
      const r = runScript(broken, script, [...args]);
      expect(r.code, `${script}: ${r.stdout.slice(-500)}${r.stderr}`).not.toBe(0);
      expect(r.code, script).not.toBeNull();
      expect(r.stdout, script).not.toMatch(/^ok/m);
    }
  });
});
