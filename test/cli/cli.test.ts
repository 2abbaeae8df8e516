/**
 * The tlog command, run as a real process from dist/ (the test command compiles first).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveDir } from '../client/helpers.js';
import { LINES_PER_BATCH } from '../../src/cli/append.js';
import { ensureDist, repoRoot, tlogBin } from '../helpers/dist.js';
import { makeTempDir, removeDir, tempDirPerFile } from '../helpers/temp-dirs.js';
import { runTlog, spawnServe, stopServe } from '../helpers/tlog-cli.js';

const tmp = tempDirPerFile('tlog-cli-');

/** tlog on the data roots of `tmp.dir`. */
function tlog(args: string[], input?: string) {
  return runTlog(['--tiles-dir', 'tiles', '--checkpoints-dir', 'checkpoints', '--state-dir', 'state', ...args], { cwd: tmp.dir, input });
}

/** The same, without blocking this process (for tests that serve something to it). */
function tlogAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [tlogBin, ...args], { cwd: tmp.dir });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(() => ensureDist(), 240_000);

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
    writeFileSync(path.join(tmp.dir, 'a.txt'), 'file a');
    writeFileSync(path.join(tmp.dir, 'b.txt'), 'file b');
    const files = tlog(['append', 'a.txt', 'b.txt']);
    expect(files.code).toBe(0);
    expect(
      files.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).index),
    ).toEqual([0, 1]);
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

  it('append --lines streams: results come while stdin is still open, and 100k lines land in order', async () => {
    expect(tlog(['init', '--origin', 'example.com/lines', '--tenant', 'lines']).code).toBe(0);
    const child = spawn(
      process.execPath,
      [tlogBin, '--tiles-dir', 'tiles', '--checkpoints-dir', 'checkpoints', '--state-dir', 'state', 'append', '--lines', '--tenant', 'lines'],
      { cwd: tmp.dir },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const text = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `streamed line ${from + k}\n`).join('');
    // More than one batch, then nothing more for now: with the input held in memory until it
    // ends, no result could appear before stdin closes.
    child.stdin.write(text(0, LINES_PER_BATCH + 100));
    for (let i = 0; i < 1200 && out === '' && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    expect(out, err).not.toBe('');
    expect(child.exitCode).toBeNull(); // still reading
    const total = 100_000;
    for (let from = LINES_PER_BATCH + 100; from < total; from += 10_000) {
      if (!child.stdin.write(text(from, Math.min(total, from + 10_000)))) await new Promise((r) => child.stdin.once('drain', r));
    }
    child.stdin.end();
    expect(await exited, err).toBe(0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number });
    expect(lines).toHaveLength(total);
    expect(lines.every((l, i) => l.index === i)).toBe(true);
    expect(JSON.parse(tlog(['show', '--json', '--tenant', 'lines']).stdout).treeSize).toBe(total);
  }, 300_000);

  it('append --lines refuses an empty or oversized line, naming it, and appends nothing of a batch not yet sent', () => {
    const before = JSON.parse(tlog(['show', '--json', '--tenant', 'lines']).stdout).treeSize;
    const empty = tlog(['append', '--lines', '--tenant', 'lines'], 'fresh a\nfresh b\n\nfresh c\n');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^tlog: line 3: entry is empty: entries are 1 to 65535 bytes\n$/);
    const long = tlog(['append', '--lines', '--tenant', 'lines'], `fresh a\n${'x'.repeat(70_000)}\nfresh c\n`);
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/^tlog: line 2( is longer than 65535 bytes|: entry is 70000 bytes): entries are 1 to 65535 bytes/);
    expect(JSON.parse(tlog(['show', '--json', '--tenant', 'lines']).stdout).treeSize).toBe(before);
    // A last line without its newline is a line; CRLF is not special (entries are bytes).
    const ok = tlog(['append', '--lines', '--tenant', 'lines'], 'fresh a\r\nfresh b');
    expect(ok.code).toBe(0);
    expect(
      ok.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).index),
    ).toEqual([before, before + 1]);
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
    expect(tlog(['show', '--tenant', 'nobody']).stderr).toMatch(
      /^tlog: no log "nobody" in \S+ \(logs there: [a-z, ]+\); create it with `tlog init --tenant nobody --origin <origin>`\n$/,
    );
    expect(JSON.parse(tlog(['show', '--json']).stdout).treeSize).toBe(303);
  });

  it('verify fails when a bundle byte is flipped, naming the file', () => {
    const p = path.join(tmp.dir, 'tiles/default/tile/entries/000');
    const orig = readFileSync(p);
    const bad = Buffer.from(orig);
    bad[10]! ^= 1;
    writeFileSync(p, bad);
    const v = tlog(['verify']);
    writeFileSync(p, orig);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/tile\/(0\/000|entries\/000)/);
    expect(tlog(['verify']).code).toBe(0);
  });

  it("runs through npm's bin symlink (node_modules/.bin/tlog), as `npx tlog` and installed bins run it", () => {
    // npm links node_modules/.bin/tlog -> ../tlog-worm/dist/src/cli/main.js, and the package
    // itself is a symlink when installed from a directory (what `npx tlog` in a checkout does).
    const proj = makeTempDir('tlog-bin-');
    try {
      mkdirSync(path.join(proj, 'node_modules/.bin'), { recursive: true });
      symlinkSync(repoRoot, path.join(proj, 'node_modules/tlog-worm'));
      symlinkSync('../tlog-worm/dist/src/cli/main.js', path.join(proj, 'node_modules/.bin/tlog'));
      const help = spawnSync(process.execPath, [path.join(proj, 'node_modules/.bin/tlog'), '--help'], { cwd: proj, encoding: 'utf8' });
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(/^Usage: tlog /m);
      const init = spawnSync(process.execPath, [path.join(proj, 'node_modules/.bin/tlog'), 'init', '--origin', 'example.com/bin'], {
        cwd: proj,
        encoding: 'utf8',
      });
      expect(init.stderr).toBe('');
      expect(init.stdout).toMatch(/^created log default with origin example\.com\/bin$/m);
      expect(existsSync(path.join(proj, '.tlog/default/log.json'))).toBe(true);
    } finally {
      removeDir(proj);
    }
  });

  it('monitor waits out a log that is down, saying why, and keeps following; --once fails with the reason', async () => {
    const vkeys: string[] = JSON.parse(tlog(['show', '--json']).stdout).verifierKeys;
    let drop = 0;
    const server = await serveDir(path.join(tmp.dir, 'tiles/default'), '/log', () => (drop-- > 0 ? 'reset' : null));
    try {
      // A source tries a dropped connection once more itself (a stale kept-alive socket): two
      // drops fail one poll.
      drop = 2;
      // Not spawnSync: the server runs in this process.
      const once = await tlogAsync(['monitor', '--url', server.url, '--vkey', vkeys[0]!, '--once']);
      expect(once.code).toBe(1);
      expect(once.stderr).toMatch(/^tlog: GET http:\/\/127\.0\.0\.1:\d+\/log\/checkpoint: fetch failed: .*(other side closed|socket hang up|ECONNRESET).*\n$/);
      expect(once.stderr.split('\n')).toHaveLength(2);

      drop = 4;
      const child = spawn(process.execPath, [tlogBin, 'monitor', '--url', server.url, '--vkey', vkeys[0]!, '--interval', '0.05'], { cwd: tmp.dir });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const size: number = JSON.parse(tlog(['show', '--json']).stdout).treeSize;
      for (let i = 0; i < 600 && out.split('\n').length <= size; i++) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err).toMatch(/poll failed \(1 in a row\): GET \S+\/checkpoint: fetch failed: .*; retrying in [0-9.]+ s\n/);
      expect(err).toMatch(/poll failed \(2 in a row\)/);
      const lines = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { index: number });
      expect(lines.map((l) => l.index)).toEqual(Array.from({ length: size }, (_, i) => i));
    } finally {
      await server.close();
    }
  });

  it("the README's order works as written: `npm start`, then `tlog init --origin`, append, show, verify", async () => {
    // A fresh checkout: no flags, the default data roots under the working directory.
    const cwd = mkdtempSync(path.join(tmp.dir, 'readme-'));
    const run = (args: string[], input?: string) => runTlog(args, { cwd, input });
    // `npm start` (= tlog serve), on a port the OS picks, stopped with Ctrl-C.
    const server = spawn(process.execPath, [tlogBin, 'serve', '--listen', '127.0.0.1:0'], { cwd });
    let err = '';
    server.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => server.on('exit', (code) => r(code)));
    for (let i = 0; i < 600 && !err.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(err).toMatch(/created log "default" \(origin 127\.0\.0\.1:0\/default, size 0\)/);
    expect(err).toMatch(/to choose one, stop and run `tlog init --origin <origin>`/);
    server.kill('SIGINT');
    expect(await exited).toBe(0);

    const init = run(['init', '--origin', 'example.com/log']);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(
      /^replaced the empty log default made by `tlog serve` \(origin 127\.0\.0\.1:0\/default\) with a new log with origin example\.com\/log$/m,
    );
    expect(init.stdout).toMatch(/^example\.com\/log\+[0-9a-f]{8}\+A/m);
    expect(run(['append'], 'hello\n').stdout).toMatch(/^\{"index":0,/);
    expect(
      run(['append', '--lines'], Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join(''))
        .stdout.trim()
        .split('\n'),
    ).toHaveLength(1000);
    const show = JSON.parse(run(['show', '--json']).stdout);
    expect(show).toMatchObject({ origin: 'example.com/log', treeSize: 1001 });
    const v = run(['verify']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^ok: example\.com\/log size 1001 /);
    // The origin is fixed now: a second init says so, and changes nothing.
    const again = run(['init', '--origin', 'example.com/other']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^tlog: a log already exists at .* with origin example\.com\/log: its origin cannot change/);
    // And `npm start` serves it as it is.
    const restart = spawn(process.execPath, [tlogBin, 'serve', '--listen', '127.0.0.1:0'], { cwd });
    let err2 = '';
    restart.stderr.on('data', (d) => (err2 += d));
    const exited2 = new Promise<number | null>((r) => restart.on('exit', (code) => r(code)));
    for (let i = 0; i < 600 && !err2.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(err2).toMatch(/opened log "default" \(origin example\.com\/log, size 1001\)/);
    restart.kill('SIGTERM');
    expect(await exited2).toBe(0);
  }, 120_000);

  it("serve --origin chooses the default log's origin on first start, and refuses another one later", async () => {
    const cwd = mkdtempSync(path.join(tmp.dir, 'origin-'));
    const start = async (extra: string[]) => {
      const child = spawn(process.execPath, [tlogBin, 'serve', '--listen', '127.0.0.1:0', ...extra], { cwd });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      for (let i = 0; i < 600 && !err.includes('listening on') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
      if (child.exitCode === null) child.kill('SIGTERM');
      return { code: await exited, err };
    };
    const first = await start(['--origin', 'example.com/first']);
    expect(first.code).toBe(0);
    expect(first.err).toMatch(/created log "default" \(origin example\.com\/first, size 0\)/);
    expect(first.err).not.toMatch(/to choose one/);
    const other = await start(['--origin', 'example.com/second']);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/^tlog: a log already exists at .* with origin example\.com\/first: its origin cannot change/m);
    expect((await start([])).err).toMatch(/opened log "default" \(origin example\.com\/first, size 0\)/);
  }, 120_000);

  it('every command has --help', () => {
    for (const cmd of ['init', 'append', 'verify', 'show', 'serve']) {
      const r = tlog([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Usage: tlog ${cmd}`));
    }
  });

  it('serve answers appends over HTTP, verify --url audits it, and SIGTERM exits 0', async () => {
    // Port 0: the OS picks a free one, and serve says which.
    const p = await spawnServe([], { cwd: tmp.dir, globalArgs: ['--tiles-dir', 't2', '--checkpoints-dir', 'c2', '--state-dir', 's2'], timeoutMs: 30_000 });
    const base = `${p.url}/default`;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/append`, { method: 'POST', body: `http entry ${i}` });
      expect(res.status).toBe(200);
      expect((await res.json()).index).toBe(i);
    }
    const vkey = p
      .stderr()
      .split('\n')
      .map((l) => l.trim())
      .find((l) => /^127\.0\.0\.1:\d+\/default\+[0-9a-f]{8}\+A/.test(l))!;
    const v = runTlog(['verify', '--url', base, '--vkey', vkey, '--json'], { cwd: tmp.dir });
    expect(v.stderr).toBe('');
    expect(JSON.parse(v.stdout).treeSize).toBe(5);
    const wrongKey = runTlog(['verify', '--url', base, '--vkey', 'example.com/cli+00000000+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c'], { cwd: tmp.dir });
    expect(wrongKey.code).toBe(1);
    expect(await stopServe(p)).toBe(0);
  });
});
