/**
 * Third-party check of our logs with the Go reference packages golang.org/x/mod/sumdb/tlog and
 * sumdb/note, through the checker in go/tlogcheck (issue 2).
 *
 * The checker verifies the checkpoint's Ed25519 line with note.Open (our ML-DSA-44 line has the
 * same name and another key ID, so x/mod must ignore it), recomputes the root from our tiles with
 * tlog.TileHashReader + tlog.TreeHash, reads every tile the checkpoint implies
 * (tlog.NewTiles), checks every entry of every bundle against its level-0 hash, and builds and
 * checks inclusion and consistency proofs. Here we build logs with our engine, run it, compare
 * its root and proofs with ours, and break the logs to prove it notices.
 *
 * Needs Go >= 1.26 on PATH (CI installs it); the first build downloads golang.org/x/mod.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots } from '../../src/tile-store/paths.js';
import { buildChecker, runCheck as runChecker, WANT_CONTENT_TYPES, type CheckResult } from './tlogcheck.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';
import { flipBits } from '../helpers/file-bytes.js';
import { toB64 } from '../vectors.js';

/** Runs the checker on a log prefix. */
const runCheck = (prefix: string, args: string[]): Promise<CheckResult> => runChecker([...args, prefix]);

/**
 * Entries that differ per tenant, with the bundle format's edge cases sprinkled in: a 1-byte
 * entry, the largest one (65535 bytes, u16 length 0xffff), one whose length prefix is 0x1f8b
 * (the gzip magic), and some a few hundred bytes long.
 */
function entryFor(tenant: string, i: number): Uint8Array {
  if (i === 2) return Uint8Array.of(0x2a);
  if (i === 3) return new Uint8Array(65535).fill(0x41 + (tenant.length % 26));
  if (i === 4) return new Uint8Array(0x1f8b).fill(0x62);
  const s = `${tenant}/entry-${i}`;
  return Buffer.from(i % 97 === 0 ? s + '.'.repeat(300 + (i % 200)) : s);
}

interface MadeLog {
  tenant: string;
  log: Log;
  /** tiles/<tenant>: the checker's PREFIX. */
  dir: string;
  vkeysFile: string;
  /** Copies of the checkpoint taken after init and after each step but the last, oldest first. */
  olds: { size: number; file: string }[];
}

const SIZES: Record<number, number[]> = {
  0: [],
  1: [1],
  255: [255],
  256: [100, 156],
  257: [256, 1],
  1000: [257, 743],
  // 70000: 273 full level-0 tiles + 0/273.p/112, 1/000 + 1/001.p/17, 2/000.p/1 (c2sp digest §5).
  70000: [1000, 64536, 4464],
};

let tmp: string;
let roots: DataRoots;
const logs = new Map<number, MadeLog>();

async function makeLog(size: number, steps: number[]): Promise<MadeLog> {
  const tenant = `s${size}`;
  const paths = logPaths(roots, tenant);
  const log = await Log.init(paths, `example.com/interop/${tenant}`);
  const made: MadeLog = { tenant, log, dir: paths.tilesDir, vkeysFile: path.join(paths.historyDir, 'vkeys'), olds: [] };
  const keep = () => {
    const file = path.join(tmp, 'olds', `${tenant}-${log.treeSize}`);
    fs.copyFileSync(path.join(paths.tilesDir, 'checkpoint'), file);
    made.olds.push({ size: log.treeSize, file });
  };
  keep();
  let next = 0;
  for (const [k, n] of steps.entries()) {
    const entries = Array.from({ length: n }, (_, j) => entryFor(tenant, next + j));
    next += n;
    await Promise.all(log.appendMany(entries));
    if (k < steps.length - 1) keep();
  }
  expect(log.treeSize).toBe(size);
  return made;
}

/** A copy of a log's tiles directory to break. */
function copyLog(size: number, name: string): string {
  const dst = path.join(tmp, 'broken', name);
  fs.cpSync(logs.get(size)!.dir, dst, { recursive: true });
  return dst;
}

/** Replaces one base64 character inside the signature bytes (after the key ID) of a signature line. */
function corruptSignatureLine(file: string, keyIDHex: string): void {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => {
    const sig = l.startsWith('\u2014 ') ? l.split(' ')[2] : undefined;
    return sig !== undefined && Buffer.from(sig, 'base64').subarray(0, 4).toString('hex') === keyIDHex;
  });
  expect(i, `signature line with key ID ${keyIDHex}`).toBeGreaterThan(-1);
  const [dash, name, sig] = lines[i]!.split(' ') as [string, string, string];
  const pos = 20; // base64 char 20 = bits of byte 15: inside the signature, past the 4-byte key ID
  const swapped = sig[pos] === 'A' ? 'B' : 'A';
  lines[i] = `${dash} ${name} ${sig.slice(0, pos)}${swapped}${sig.slice(pos + 1)}`;
  fs.writeFileSync(file, lines.join('\n'));
}

describe('golang.org/x/mod/sumdb checks our logs', () => {
  beforeAll(async () => {
    buildChecker();
    ({ dir: tmp, roots } = tempDataRoots('tlog-xmod-'));
    fs.mkdirSync(path.join(tmp, 'olds'));
    for (const [size, steps] of Object.entries(SIZES)) logs.set(Number(size), await makeLog(Number(size), steps));
  }, 360_000);

  afterAll(async () => {
    for (const l of logs.values()) await l.log.close();
    if (tmp) removeDir(tmp);
  });

  for (const size of Object.keys(SIZES).map(Number)) {
    it(`accepts the log of size ${size}: root, every tile and entry, inclusion and consistency proofs`, async () => {
      const l = logs.get(size)!;
      const cp = l.log.committed;
      const prove = size === 0 ? [] : [...new Set([0, Math.floor(size / 2), size - 1])];
      const { code, summary, stderr } = await runCheck(l.dir, [
        '-vkey-file',
        l.vkeysFile,
        '-proofs',
        '300',
        '-layout',
        ...prove.flatMap((i) => ['-prove', String(i)]),
        ...l.olds.flatMap((o) => ['-old', o.file]),
      ]);
      expect(stderr).toBe('');
      expect(summary.error).toBeUndefined();
      expect(code).toBe(0);
      expect(summary.ok).toBe(true);

      // The same tree, as x/mod sees it.
      expect(summary.origin).toBe(l.log.origin);
      expect(summary.treeSize).toBe(cp.treeSize);
      expect(summary.rootHash).toBe(toB64(cp.rootHash));
      expect(summary.extensions).toEqual([]);
      expect(summary.entries).toBe(size);
      expect(summary.bundles).toBe(Math.ceil(size / 256));
      expect(summary.partialFallbacks).toBe(0);
      expect(summary.recordProofs).toBe(Math.min(size, 300));
      // Every file under tiles/<tenant> is a canonical tlog-tiles name (x/mod's ParseTilePath)
      // within the tree: no temp files, no empty or beyond-the-tree tiles.
      expect(summary.layout!.files).toBeGreaterThan(0);

      // note.Open verified our Ed25519 line and ignored the ML-DSA-44 one: same name, other key
      // ID, 4 + 8 + 2420 bytes (c2sp tlog-cosignature: keyID || ts || signature).
      const [edVkey, mldsaVkey] = l.log.verifierKeys() as [string, string];
      expect(fs.readFileSync(l.vkeysFile, 'utf8').split('\n')[0]).toBe(edVkey);
      expect(summary.signatures).toEqual([
        { name: l.log.origin, keyID: edVkey.split('+')[1], bytes: 68, verified: true },
        { name: l.log.origin, keyID: mldsaVkey.split('+')[1], bytes: 2432, verified: false },
      ]);

      // x/mod's proofs, built from our tiles, are byte for byte the ones our engine builds.
      expect(summary.inclusion.map((p) => p.index)).toEqual(prove);
      for (const p of summary.inclusion) {
        expect(p.proof, `inclusion proof of ${p.index} in ${size}`).toEqual((await l.log.inclusionProof(p.index, size)).map(toB64));
      }
      expect(summary.consistency.map((c) => c.oldSize)).toEqual(l.olds.map((o) => o.size));
      for (const c of summary.consistency) {
        expect(c.proof, `consistency proof ${c.oldSize} -> ${size}`).toEqual((await l.log.consistencyProof(c.oldSize, size)).map(toB64));
      }
    });
  }

  it('checks consistency with the final checkpoint itself and with copies taken along the way', async () => {
    const l = logs.get(70000)!;
    const final = path.join(tmp, 'olds', 's70000-final');
    fs.copyFileSync(path.join(l.dir, 'checkpoint'), final);
    const { code, summary } = await runCheck(l.dir, ['-vkey-file', l.vkeysFile, '-proofs', '0', '-old', final, ...l.olds.flatMap((o) => ['-old', o.file])]);
    expect(code).toBe(0);
    expect(summary.consistency.map((c) => c.oldSize)).toEqual([70000, 0, 1000, 65536]);
    // Same size and size 0: empty proofs on both sides. 65536 is a power of two: RFC 6962
    // leaves the old root out of the proof.
    for (const c of summary.consistency) {
      expect(c.proof, `consistency proof ${c.oldSize} -> 70000`).toEqual((await l.log.consistencyProof(c.oldSize, 70000)).map(toB64));
    }
    expect(summary.consistency[0]!.proof).toEqual([]);
  });

  describe('notices a broken log', () => {
    const broken: [string, number, (dir: string) => void, string[]][] = [
      ['a byte of a full level-0 tile', 1000, (d) => flipBits(path.join(d, 'tile/0/001'), 4000), ['tiles', 'entries']],
      ['a byte of the partial level-0 tile', 1000, (d) => flipBits(path.join(d, 'tile/0/003.p/232'), 31), ['tree']],
      ['a byte of an entry in a full bundle', 1000, (d) => flipBits(path.join(d, 'tile/entries/001'), -1), ['entries']],
      ['a byte of an entry in the partial bundle', 1000, (d) => flipBits(path.join(d, 'tile/entries/003.p/232'), 10), ['entries']],
      ['a byte of the partial level-1 tile', 1000, (d) => flipBits(path.join(d, 'tile/1/000.p/3'), 40), ['tree']],
      ['a byte of a full level-1 tile', 70000, (d) => flipBits(path.join(d, 'tile/1/000'), 8000), ['tiles', 'entries']],
      ['a byte of the level-2 tile', 70000, (d) => flipBits(path.join(d, 'tile/2/000.p/1'), 0), ['tree']],
      ['a truncated level-0 tile', 257, (d) => fs.truncateSync(path.join(d, 'tile/0/000'), 8160), ['tiles', 'entries']],
      ['a missing partial bundle', 257, (d) => fs.rmSync(path.join(d, 'tile/entries/001.p/1')), ['entries']],
      ['a bundle with an extra entry', 255, (d) => fs.appendFileSync(path.join(d, 'tile/entries/000.p/255'), Buffer.from([0, 1, 0x78])), ['entries']],
      [
        'the Ed25519 checkpoint signature',
        1000,
        (d) => corruptSignatureLine(path.join(d, 'checkpoint'), logs.get(1000)!.log.verifierKeys()[0]!.split('+')[1]!),
        ['checkpoint'],
      ],
      [
        'the checkpoint text (size)',
        256,
        (d) => {
          const f = path.join(d, 'checkpoint');
          fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('\n256\n', '\n255\n'));
        },
        ['checkpoint'],
      ],
    ];
    const layout: [string, number, (dir: string) => void][] = [
      ['a temp file left beside the tiles', 1000, (d) => fs.writeFileSync(path.join(d, 'tile/0/.001.tmp-1234'), 'x')],
      [
        'an empty partial tile',
        256,
        (d) => {
          fs.mkdirSync(path.join(d, 'tile/0/001.p'), { recursive: true });
          fs.writeFileSync(path.join(d, 'tile/0/001.p/0'), '');
        },
      ],
      [
        'a tile past the tree',
        256,
        (d) => {
          fs.mkdirSync(path.join(d, 'tile/0/001.p'), { recursive: true });
          fs.writeFileSync(path.join(d, 'tile/0/001.p/1'), new Uint8Array(32));
        },
      ],
      ['a non-canonical index path', 1000, (d) => fs.copyFileSync(path.join(d, 'tile/0/001'), path.join(d, 'tile/0/01'))],
    ];
    for (const [what, size, breakIt] of layout) {
      it(`-layout: ${what} (log of size ${size})`, async () => {
        const dir = copyLog(size, `layout-${what.replace(/[^a-z0-9]+/gi, '-')}`);
        breakIt(dir);
        const l = logs.get(size)!;
        const { code, summary } = await runCheck(dir, ['-vkey-file', l.vkeysFile, '-proofs', '0', '-layout']);
        expect(code, JSON.stringify(summary)).toBe(1);
        expect(summary.stage).toBe('layout');
        // Without -layout the tree itself is still fine: stray files are invisible to readers.
        expect((await runCheck(dir, ['-vkey-file', l.vkeysFile, '-proofs', '0'])).code).toBe(0);
      });
    }

    for (const [what, size, breakIt, stages] of broken) {
      it(`${what} (log of size ${size})`, async () => {
        const dir = copyLog(size, what.replace(/[^a-z0-9]+/gi, '-'));
        breakIt(dir);
        const { code, summary, stderr } = await runCheck(dir, ['-vkey-file', logs.get(size)!.vkeysFile, '-proofs', '50']);
        expect(code, JSON.stringify(summary)).toBe(1);
        expect(summary.ok).toBe(false);
        expect(stages).toContain(summary.stage);
        expect(stderr).toContain('FAIL');
      });
    }

    it('a checkpoint verified with the wrong key', async () => {
      const { code, summary } = await runCheck(logs.get(257)!.dir, ['-vkey-file', logs.get(256)!.vkeysFile]);
      expect(code).toBe(1);
      expect(summary.stage).toBe('checkpoint');
    });

    it('an old checkpoint of another log', async () => {
      const l = logs.get(1000)!;
      const { code, summary } = await runCheck(l.dir, ['-vkey-file', l.vkeysFile, '-proofs', '0', '-old', logs.get(257)!.olds[1]!.file]);
      expect(code).toBe(1);
      expect(summary.stage).toBe('consistency');
    });

    it('a fork: old checkpoints signed by the same key that this tree does not extend', async () => {
      // Log A with 10 entries is copied, keys and all, to B; then A and B grow apart.
      const a = logPaths(roots, 'fork-a');
      const b = logPaths(roots, 'fork-b');
      let logA = await Log.init(a, 'example.com/interop/fork');
      await Promise.all(logA.appendMany(Array.from({ length: 10 }, (_, i) => entryFor('fork', i))));
      await logA.close();
      for (const k of ['tilesDir', 'historyDir', 'stateDir'] as const) fs.cpSync(a[k], b[k], { recursive: true });
      logA = await Log.open(a);
      const logB = await Log.open(b);
      try {
        await Promise.all(logA.appendMany(Array.from({ length: 20 }, (_, i) => entryFor('fork-a', 10 + i))));
        await Promise.all(logB.appendMany(Array.from({ length: 5 }, (_, i) => entryFor('fork-b', 10 + i))));
        const b15 = path.join(tmp, 'olds', 'fork-b-15');
        fs.copyFileSync(path.join(b.tilesDir, 'checkpoint'), b15);
        await Promise.all(logB.appendMany(Array.from({ length: 15 }, (_, i) => entryFor('fork-b', 15 + i))));
        const b30 = path.join(tmp, 'olds', 'fork-b-30');
        fs.copyFileSync(path.join(b.tilesDir, 'checkpoint'), b30);
        const vkeys = path.join(a.historyDir, 'vkeys');

        // Both logs are fine on their own, and share the checkpoint at 10.
        const a10 = path.join(a.historyDir, 'log', '010');
        expect((await runCheck(a.tilesDir, ['-vkey-file', vkeys, '-old', a10])).code).toBe(0);
        expect((await runCheck(b.tilesDir, ['-vkey-file', vkeys, '-old', a10, '-old', b15])).code).toBe(0);
        for (const old of [b15, b30]) {
          const { code, summary } = await runCheck(a.tilesDir, ['-vkey-file', vkeys, '-old', old]);
          expect(code, JSON.stringify(summary)).toBe(1);
          expect(summary.stage).toBe('consistency');
          expect(summary.error).toMatch(/tlog\.CheckTree/);
        }
      } finally {
        await logA.close();
        await logB.close();
      }
    });

    it('an ML-DSA-44 line x/mod cannot check is ignored, not trusted: corrupting it changes nothing', async () => {
      const l = logs.get(1000)!;
      const dir = copyLog(1000, 'corrupt-mldsa');
      corruptSignatureLine(path.join(dir, 'checkpoint'), l.log.verifierKeys()[1]!.split('+')[1]!);
      const { code, summary } = await runCheck(dir, ['-vkey-file', l.vkeysFile, '-proofs', '10']);
      expect(code).toBe(0);
      expect(summary.signatures!.filter((s) => s.verified)).toHaveLength(1);
    });
  });

  it('falls back to the full tile when a partial one an older checkpoint implies is gone', async () => {
    // The log of size 70000 served with its checkpoint at 1000 (= 3*256 + 232), whose partial
    // tiles 0/003.p/232, 1/000.p/3 and entries/003.p/232 the log deleted once the full tiles
    // existed (c2sp.org/tlog-tiles: it MAY).
    const l = logs.get(70000)!;
    const dir = copyLog(70000, 'pruned-partials');
    const at1000 = l.olds.find((o) => o.size === 1000)!;
    fs.copyFileSync(at1000.file, path.join(dir, 'checkpoint'));
    for (const p of ['tile/0/003.p/232', 'tile/1/000.p/3', 'tile/entries/003.p/232']) {
      expect(fs.existsSync(path.join(dir, p)), p).toBe(false);
      expect(fs.existsSync(path.join(dir, p.replace(/\.p\/\d+$/, ''))), p).toBe(true);
    }
    const { code, summary } = await runCheck(dir, ['-vkey-file', l.vkeysFile, '-proofs', '100']);
    expect(summary.error).toBeUndefined();
    expect(code).toBe(0);
    expect(summary.treeSize).toBe(1000);
    expect(summary.partialFallbacks).toBe(3);
  });

  describe('over HTTP', () => {
    let server: http.Server;
    let base: string;

    beforeAll(async () => {
      // A minimal static server with the deployed headers (c2sp digest §5): checkpoint
      // no-store, tiles immutable, bundles gzipped whether asked or not.
      server = http.createServer((req, res) => {
        const url = new URL(req.url!, 'http://x');
        const old = /^\/olds\/([a-z0-9-]+)$/.exec(url.pathname);
        if (old && fs.existsSync(path.join(tmp, 'olds', old[1]!))) {
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(fs.readFileSync(path.join(tmp, 'olds', old[1]!)));
          return;
        }
        const m = /^\/(s\d+)\/(.+)$/.exec(url.pathname);
        const file = m ? path.join(logs.get(Number(m[1]!.slice(1)))?.dir ?? '/nonexistent', m[2]!) : '';
        if (!m || m[2]!.includes('..') || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
          res.writeHead(404).end('not found\n');
          return;
        }
        const body = fs.readFileSync(file);
        if (m[2] === 'checkpoint') {
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }).end(body);
        } else if (m[2]!.startsWith('tile/entries/')) {
          res
            .writeHead(200, {
              'Content-Type': 'application/octet-stream',
              'Cache-Control': 'public, max-age=604800, immutable',
              'Content-Encoding': 'gzip',
            })
            .end(gzipSync(body));
        } else {
          res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'public, max-age=604800, immutable' }).end(body);
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const wants = [...WANT_CONTENT_TYPES, '-want-cache-control', 'checkpoint=no-store', '-want-cache-control', 'tile=immutable, max-age=604800'];

    it('checks a log at a URL prefix, decodes gzip bundles and reports the headers it saw', async () => {
      const l = logs.get(1000)!;
      const old = l.olds[1]!;
      const { code, summary } = await runCheck(`${base}/${l.tenant}`, [
        '-vkey-file',
        l.vkeysFile,
        '-gzip=false',
        '-old',
        `${base}/olds/${path.basename(old.file)}`,
        ...wants,
      ]);
      expect(summary.error).toBeUndefined();
      expect(code).toBe(0);
      expect(summary.rootHash).toBe(toB64(l.log.committed.rootHash));
      expect(summary.entries).toBe(1000);
      expect(summary.http!.checkpoint).toEqual({ requests: 1, contentType: ['text/plain; charset=utf-8'], cacheControl: ['no-store'], contentEncoding: [''] });
      expect(summary.http!.entries!.contentEncoding).toEqual(['gzip']);
      expect(summary.http!.tile!.cacheControl).toEqual(['public, max-age=604800, immutable']);
      expect(summary.http!.old!.requests).toBe(1);
      expect(summary.consistency.map((c) => c.oldSize)).toEqual([old.size]);
      expect(summary.consistency[0]!.proof).toEqual((await l.log.consistencyProof(old.size, 1000)).map(toB64));
    });

    it('fails on a header it was told to expect and did not get', async () => {
      const l = logs.get(256)!;
      const { code, summary } = await runCheck(`${base}/${l.tenant}`, ['-vkey-file', l.vkeysFile, '-want-cache-control', 'checkpoint=no-cache']);
      expect(code).toBe(1);
      expect(summary.stage).toBe('http-headers');
    });

    it('fails when the checkpoint is not found', async () => {
      const { code, summary } = await runCheck(`${base}/s999`, ['-vkey-file', logs.get(256)!.vkeysFile]);
      expect(code).toBe(1);
      expect(summary.stage).toBe('checkpoint');
    });
  });
});
