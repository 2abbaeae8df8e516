/**
 * The tlog command, run as a real process from dist/ (the test command compiles first).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = path.resolve(__dirname, '../..');
const bin = path.join(repo, 'dist/src/cli/main.js');
let dir: string;

function tlog(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, '--tiles-dir', 'tiles', '--checkpoints-dir', 'checkpoints', '--state-dir', 'state', ...args], {
    cwd: dir,
    input,
    encoding: 'utf8',
  });
  // A process that did not exit by itself (killed, or failed to spawn) is a failure of its own, not an empty answer.
  if (r.error || r.signal) throw new Error(`tlog ${args.join(' ')}: ${r.error ? r.error.message : `killed by ${r.signal}`}\n${r.stderr}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync(bin)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repo });
  dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tlog', () => {
  it('init prints verifier keys; a second init fails with one line and exit 1', () => {
    const r = tlog(['init', '--origin', 'example.com/cli']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^example\.com\/cli\+[0-9a-f]{8}\+A/m);
    expect(r.stdout).toMatch(/^example\.com\/cli\+[0-9a-f]{8}\+B/m); // 0x06 keys start with "B" in base64
    const again = tlog(['init', '--origin', 'example.com/cli']);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/^tlog: a log already exists/);
  });

  it('appends files, stdin and lines, then show and verify agree', () => {
    writeFileSync(path.join(dir, 'a.txt'), 'file a');
    writeFileSync(path.join(dir, 'b.txt'), 'file b');
    const files = tlog(['append', 'a.txt', 'b.txt']);
    expect(files.code).toBe(0);
    expect(files.stdout.trim().split('\n').map((l) => JSON.parse(l).index)).toEqual([0, 1]);
    expect(tlog(['append'], 'from stdin').stdout).toMatch(/"index":2/);
    const lines = tlog(['append', '--lines'], Array.from({ length: 300 }, (_, i) => `line ${i}`).join('\n') + '\n');
    expect(lines.stdout.trim().split('\n')).toHaveLength(300);
    const show = JSON.parse(tlog(['show', '--json']).stdout);
    expect(show.treeSize).toBe(303);
    expect(show.origin).toBe('example.com/cli');
    const v = tlog(['verify', '--json']);
    expect(v.code).toBe(0);
    const report = JSON.parse(v.stdout);
    expect(report).toMatchObject({ treeSize: 303, rootHash: show.rootHash });
    expect(report.checkpointsChecked).toBeGreaterThanOrEqual(4);
    // History sizes 0, 1..255 (tile 0, full now: its partials collected), 303 (a bundle, a
    // level-0 and a level-1 partial, checked as history and as the published checkpoint).
    expect(report.partials).toEqual({ present: 6, fullTileExists: 2 * (report.checkpointsChecked - 2), collected: 0 });
    const human = tlog(['verify']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(
      `partials of the checkpoints checked: 6 present and checked, ${2 * (report.checkpointsChecked - 2)} absent (full tile exists), 0 collected (served as the prefix of a wider one)`,
    );
  });

  it('rejects bad input with exit 1 and one readable line, changing nothing', () => {
    const empty = tlog(['append'], '');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^tlog: entry is empty/);
    const big = tlog(['append'], 'x'.repeat(70000));
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/65535/);
    expect(tlog(['append', 'no-such-file']).code).toBe(1);
    expect(tlog(['append', '--tenant', 'Bad/Name'], 'x').stderr).toMatch(/bad tenant name/);
    expect(tlog(['show', '--tenant', 'nobody']).stderr).toMatch(/run `tlog init` first/);
    expect(JSON.parse(tlog(['show', '--json']).stdout).treeSize).toBe(303);
  });

  it('verify fails when a bundle byte is flipped, naming the file', () => {
    const p = path.join(dir, 'tiles/default/tile/entries/000');
    const orig = readFileSync(p);
    const bad = Buffer.from(orig);
    bad[10] ^= 1;
    writeFileSync(p, bad);
    const v = tlog(['verify']);
    writeFileSync(p, orig);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/tile\/(0\/000|entries\/000)/);
    expect(tlog(['verify']).code).toBe(0);
  });

  it('every command has --help', () => {
    for (const cmd of ['init', 'append', 'verify', 'show', 'serve']) {
      const r = tlog([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Usage: tlog ${cmd}`));
    }
  });

  it('serve answers appends over HTTP, verify --url audits it, and SIGTERM exits 0', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [bin, '--tiles-dir', 't2', '--checkpoints-dir', 'c2', '--state-dir', 's2', 'serve', '--listen', `127.0.0.1:${port}`], { cwd: dir });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 15000);
      child.stderr.on('data', () => err.includes('listening on') && (clearTimeout(t), resolve()));
    });
    const base = `http://127.0.0.1:${port}/default`;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/append`, { method: 'POST', body: `http entry ${i}` });
      expect(res.status).toBe(200);
      expect((await res.json()).index).toBe(i);
    }
    const vkey = err.split('\n').map((l) => l.trim()).find((l) => /^127\.0\.0\.1:\d+\/default\+[0-9a-f]{8}\+A/.test(l))!;
    const v = spawnSync(process.execPath, [bin, 'verify', '--url', base, '--vkey', vkey, '--json'], { cwd: dir, encoding: 'utf8' });
    expect(v.stderr).toBe('');
    expect(JSON.parse(v.stdout).treeSize).toBe(5);
    const wrongKey = spawnSync(process.execPath, [bin, 'verify', '--url', base, '--vkey', 'example.com/cli+00000000+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c'], { cwd: dir, encoding: 'utf8' });
    expect(wrongKey.status).toBe(1);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
  });
});
