/**
 * The command line an operator uses: --version, tenant add (a missing configuration file is
 * created), tenant list, tenant retire (writes refused, reads served, applied by a reload),
 * token hash (the command the configuration's hint names), export verify --tenant, and the usual
 * mistakes: each one readable line on stderr, a non-zero exit, and nothing changed on disk.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, validateConfig } from '../../src/config/config.js';
import { createApp } from '../../src/http/app.js';
import { hashToken } from '../../src/http/auth.js';
import { createLogger, Metrics } from '../../src/http/observe.js';
import { silentLogger } from '../../src/log/log.js';
import { ConfiguredTenants } from '../../src/tenants/apply.js';
import { TenantRegistry } from '../../src/tenants/registry.js';
import { ensureDist, repoRoot } from '../helpers/dist.js';
import { runTlog, spawnServe, type ServeProc } from '../helpers/tlog-cli.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;

/** The environment without the tlog settings a developer's shell may carry. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TLOG_')));

function tlog(args: string[], o: { input?: string; cwd?: string } = {}) {
  return runTlog(args, { cwd: o.cwd ?? dir, input: o.input ?? '', baseEnv: env });
}

/** Every file under `root` with its size and content hash: what "nothing changed" compares. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(root, { recursive: true }).map(String).sort()) {
    const p = path.join(root, rel);
    const st = statSync(p);
    out[rel] = st.isDirectory() ? 'dir' : `${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  }
  return out;
}

beforeAll(() => {
  ensureDist();
  dir = makeTempDir('tlog-operators-');
  // Two local logs: "default" and "b", with entries.
  expect(tlog(['init', '--origin', 'example.com/default']).code).toBe(0);
  expect(tlog(['init', '--origin', 'example.com/b', '--tenant', 'b']).code).toBe(0);
  expect(tlog(['append', '--lines'], { input: 'one\ntwo\n' }).code).toBe(0);
  expect(tlog(['append', '--lines', '--tenant', 'b'], { input: 'b1\nb2\nb3\n' }).code).toBe(0);
  writeFileSync(path.join(dir, 'existing.jsonl'), 'keep me\n');
}, 240_000);
afterAll(() => removeDir(dir));

describe('tlog for operators', () => {
  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = tlog([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`tlog-worm ${pkg.version}\n`);
    }
  });

  it('mistakes: one readable line on stderr, a non-zero exit, nothing changed', () => {
    const cases: [string[], RegExp, string?][] = [
      [['verify', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in \S+\/tiles \(logs there: b, default\); give --tenant, --tiles-dir or --url$/],
      [
        ['show', '--tenant', 'nosuch'],
        /^tlog: no log "nosuch" in \S+\/\.tlog \(logs there: b, default\); create it with `tlog init --tenant nosuch --origin <origin>`$/,
      ],
      [['append', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in \S+\/\.tlog/, 'entry'],
      [['index', 'rebuild', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in /],
      [['index', 'check', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in /],
      [['anchor', 'list', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in /],
      [['proof', '0', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in \S+\/tiles/],
      [['monitor', '--once', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in \S+\/tiles/],
      [['export', '--format', 'vip-ledger', '--tenant', 'nosuch', '--out', 'n.jsonl'], /^tlog: no log "nosuch" in \S+\/tiles/],
      [['export', 'verify', 'existing.jsonl', '--local', '--tenant', 'nosuch'], /^tlog: no log "nosuch" in \S+\/tiles/],
      [
        ['export', '--format', 'vip-ledger', '--out', 'existing.jsonl'],
        /^tlog: ledger file existing\.jsonl already exists: export never overwrites a file \(remove it, or choose another name\)$/,
      ],
      // The ledger is not left behind when the checkpoint file cannot be made.
      [
        ['export', '--format', 'vip-ledger', '--out', 'new.jsonl', '--checkpoint-out', 'existing.jsonl'],
        /^tlog: checkpoint file existing\.jsonl already exists/,
      ],
      [['append', 'no-such-file'], /^tlog: no-such-file: no such file or directory$/],
      [
        ['proof', 'verify', 'no-such.proof', '--leaf-hash', Buffer.alloc(32).toString('base64'), '--vkey', 'x'],
        /^tlog: cannot read proof file no-such\.proof: no such file or directory$/,
      ],
      [
        ['tenant', 'list', '--config', 'no-such.yaml'],
        /^tlog: configuration no-such\.yaml does not exist \(`tlog tenant add --config no-such\.yaml \.\.\.` creates it\)$/,
      ],
      [['tenant', 'retire', '--config', 'no-such.yaml', '--name', 'a'], /^tlog: configuration no-such\.yaml does not exist/],
      [
        ['tenant', 'add', '--config', 'no-dir/tlog.yaml', '--name', 'a', '--origin', 'example.com/a', '--new-token'],
        /^tlog: cannot create configuration no-dir\/tlog\.yaml: directory \S+\/no-dir does not exist$/,
      ],
      [['token', 'hash'], /^tlog: no token on stdin: printf %s "\$TOKEN" \| tlog token hash$/],
    ];
    const before = snapshot(dir);
    for (const [args, want, input] of cases) {
      const r = tlog(args, { input });
      const what = args.join(' ');
      expect(r.code, what).not.toBe(0);
      expect(r.stderr, what).toMatch(/^[^\n]+\n$/);
      expect(r.stderr.trimEnd(), what).toMatch(want);
      expect(r.stderr, what).not.toMatch(/ENOENT|EEXIST|EACCES|\n\s+at /);
      expect(snapshot(dir), what).toEqual(before);
    }
  });

  it("token hash prints the SHA-256 the configuration stores; the configuration's hint names it", () => {
    const r = tlog(['token', 'hash'], { input: 'tlog_secret-token\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${hashToken('tlog_secret-token')}\n`);
    expect(tlog(['token', 'hash'], { input: 'two tokens\n' }).code).toBe(1);
    // The hint of a bad token hash names commands, and each runs.
    let hint = '';
    try {
      validateConfig({ tenants: [{ name: 'a', origin: 'example.com/a', credentials: { tokens: ['not-a-hash'] } }] });
    } catch (e) {
      hint = (e as Error).message;
    }
    const named = [...hint.matchAll(/`tlog ([a-z ]+)`/g)].map((m) => m[1]!.split(' '));
    expect(named).toEqual([
      ['token', 'hash'],
      ['token', 'new'],
    ]);
    for (const args of named) expect(tlog(args, { input: 'tok' }).code, args.join(' ')).toBe(0);
  });

  it("export verify --tenant reads that tenant's history (the option after `verify` was taken by `export`)", () => {
    expect(tlog(['export', '--format', 'vip-ledger', '--tenant', 'b', '--out', 'b.jsonl']).code).toBe(0);
    try {
      const r = tlog(['export', 'verify', 'b.jsonl', '--local', '--tenant', 'b']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^ok: 3 ledger entries of example\.com\/b, chained and proved at tree size 3\n {2}root \S+ is the signed checkpoint's/);
      // Against the default tenant's history the same ledger does not verify.
      expect(tlog(['export', 'verify', 'b.jsonl', '--local']).code).toBe(1);
    } finally {
      rmSync(path.join(dir, 'b.jsonl'));
    }
  });

  it("tenant list shows the local logs, or a configuration's tenants with their state", () => {
    const local = tlog(['tenant', 'list']);
    expect(local.code).toBe(0);
    expect(local.stdout).toMatch(/^NAME\s+ORIGIN\s+SIZE\s+STATE\nb\s+example\.com\/b\s+3\s+local\ndefault\s+example\.com\/default\s+2\s+local\n$/);
    const json = tlog(['tenant', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json).toEqual([
      { name: 'b', origin: 'example.com/b', treeSize: 3, state: 'local', reads: null },
      { name: 'default', origin: 'example.com/default', treeSize: 2, state: 'local', reads: null },
    ]);
  });
});

describe('tenant add, list, retire on a configuration', () => {
  let cwd: string;
  const procs: ServeProc[] = [];
  beforeAll(() => {
    cwd = mkdtempSync(path.join(dir, 'svc-'));
  });
  afterAll(() => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });

  it('tenant add creates a missing configuration file; `tenants: []` is a valid configuration', () => {
    writeFileSync(path.join(cwd, 'empty.yaml'), 'tenants: []\n');
    expect(loadConfig(path.join(cwd, 'empty.yaml')).tenants).toEqual([]);
    expect(tlog(['tenant', 'list', '--config', 'empty.yaml'], { cwd }).stdout).toBe('no tenants in empty.yaml\n');

    const r = tlog(['tenant', 'add', '--config', 'tlog.yaml', '--name', 'audit', '--origin', 'example.com/audit', '--token-hash', hashToken('audit-token')], {
      cwd,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^created tlog\.yaml with tenant audit \(origin example\.com\/audit\)\n/);
    expect(statSync(path.join(cwd, 'tlog.yaml')).mode & 0o777).toBe(0o600);
    const cfg = loadConfig(path.join(cwd, 'tlog.yaml'));
    expect(cfg.tenants.map((t) => [t.name, t.origin, t.retired])).toEqual([['audit', 'example.com/audit', false]]);
    expect(existsSync(path.join(cwd, '.tlog/audit/log.json'))).toBe(true);
    // Added to the one made from `tenants: []` too, and to this one.
    expect(tlog(['tenant', 'add', '--config', 'empty.yaml', '--name', 'dev', '--origin', 'example.com/dev', '--new-token'], { cwd }).code).toBe(0);
    expect(loadConfig(path.join(cwd, 'empty.yaml')).tenants.map((t) => t.name)).toEqual(['dev']);
    rmSync(path.join(cwd, 'empty.yaml'));
    // Its log exists now (same data directories): another origin is refused, changing nothing; the same one is kept.
    const before = readFileSync(path.join(cwd, 'tlog.yaml'), 'utf8');
    const other = tlog(['tenant', 'add', '--config', 'tlog.yaml', '--name', 'dev', '--origin', 'example.com/other', '--new-token'], { cwd });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(
      /^tlog: a log "dev" exists in \S+\/\.tlog with origin example\.com\/dev: give --origin example\.com\/dev to serve it again, or another --name\n$/,
    );
    expect(readFileSync(path.join(cwd, 'tlog.yaml'), 'utf8')).toBe(before);
    const again = tlog(['tenant', 'add', '--config', 'tlog.yaml', '--name', 'dev', '--origin', 'example.com/dev', '--token-hash', hashToken('dev-token')], {
      cwd,
    });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(
      /^added tenant dev \(origin example\.com\/dev\) to tlog\.yaml; its log existed and is kept \(size 0\)\nverifier keys:\nexample\.com\/dev\+/,
    );
    expect(tlog(['tenant', 'list', '--config', 'tlog.yaml'], { cwd }).stdout).toMatch(
      /^NAME\s+ORIGIN\s+SIZE\s+STATE\s+READS\naudit\s+example\.com\/audit\s+0\s+serving\s+public\ndev\s+example\.com\/dev\s+0\s+serving\s+public\n$/,
    );
  });

  it('tenant retire: recorded in the file, refuses a tenant not there and changes nothing; once reloaded, writes get 410 and reads go on', async () => {
    const file = path.join(cwd, 'tlog.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^tenants:/m, '# keep this comment\ntenants:'));
    const p = await spawnServe(['--config', 'tlog.yaml'], { cwd });
    procs.push(p);
    const append = (t: string, body: string) =>
      fetch(`${p.url}/${t}/append`, { method: 'POST', body, headers: { authorization: `Bearer ${t}-token`, 'content-type': 'application/octet-stream' } });
    expect((await append('audit', 'before retirement')).status).toBe(200);

    const unchanged = readFileSync(file, 'utf8');
    const no = tlog(['tenant', 'retire', '--config', 'tlog.yaml', '--name', 'nosuch'], { cwd });
    expect(no.code).toBe(1);
    expect(no.stderr).toBe('tlog: no tenant nosuch in tlog.yaml (tenants: audit, dev)\n');
    expect(readFileSync(file, 'utf8')).toBe(unchanged);

    const r = tlog(['tenant', 'retire', '--config', 'tlog.yaml', '--name', 'audit'], { cwd });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^retired tenant audit in tlog\.yaml/);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/# keep this comment/);
    expect(loadConfig(file).tenants.map((t) => [t.name, t.retired])).toEqual([
      ['audit', true],
      ['dev', false],
    ]);
    expect(tlog(['tenant', 'retire', '--config', 'tlog.yaml', '--name', 'audit'], { cwd }).stdout).toBe(
      'tenant audit is retired already in tlog.yaml; nothing changed\n',
    );
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(tlog(['tenant', 'list', '--config', 'tlog.yaml'], { cwd }).stdout).toMatch(/\naudit\s+example\.com\/audit\s+1\s+retired\s+public\n/);

    // Not applied before the reload.
    expect((await append('audit', 'still open')).status).toBe(200);
    p.child.kill('SIGHUP');
    for (let i = 0; i < 400 && (await append('audit', `probe ${i}`)).status === 200; i++) await new Promise((r2) => setTimeout(r2, 25));
    const refused = await append('audit', 'after retirement');
    expect(refused.status).toBe(410);
    expect(await refused.json()).toEqual({
      error: 'tenant audit is retired: it takes no more entries; its log, proofs and tiles are still served',
      code: 'tenant_retired',
    });
    const size = Number((await (await fetch(`${p.url}/audit/checkpoint`)).text()).split('\n')[1]);
    expect(size).toBeGreaterThanOrEqual(2);
    expect((await fetch(`${p.url}/audit/proof/inclusion?index=0&tree_size=${size}`)).status).toBe(200);
    expect((await fetch(`${p.url}/audit/tile/entries/000.p/${size}`)).status).toBe(200);
    expect((await fetch(`${p.url}/audit/read_since?index=0`)).status).toBe(200);
    expect((await append('dev', 'dev goes on')).status).toBe(200);
    // Credentials are still checked first: a stranger learns nothing about retirement.
    expect((await fetch(`${p.url}/audit/append`, { method: 'POST', body: 'x' })).status).toBe(401);

    // A restart keeps it retired.
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    const again = await spawnServe(['--config', 'tlog.yaml'], { cwd });
    procs.push(again);
    const retry = await fetch(`${again.url}/audit/append-batch`, {
      method: 'POST',
      body: Buffer.from([0, 1, 120]),
      headers: { authorization: 'Bearer audit-token', 'content-type': 'application/octet-stream' },
    });
    expect(retry.status).toBe(410);
    expect(Number((await (await fetch(`${again.url}/audit/checkpoint`)).text()).split('\n')[1])).toBe(size);
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
  }, 120_000);
});

describe('a retired tenant in the service', () => {
  it('writes 410 tenant_retired; reads, healthz and metrics say so; a reload that clears the flag takes writes again', async () => {
    const root = mkdtempSync(path.join(dir, 'retired-'));
    mkdirSync(root, { recursive: true });
    const base = (retired: boolean) => {
      const cfg = validateConfig({ tenants: [{ name: 'old', origin: 'example.com/old', retired, credentials: { tokens: [hashToken('t')] } }] });
      return { ...cfg, tilesDir: path.join(root, 'tiles'), checkpointsDir: path.join(root, 'checkpoints'), stateDir: path.join(root, '.tlog') };
    };
    const registry = new TenantRegistry();
    const configured = new ConfiguredTenants(registry, { logger: silentLogger }, silentLogger);
    const app = createApp(registry, { logger: createLogger({ level: 'silent' }), metrics: new Metrics(false) });
    const write = () =>
      app.request('/old/append', { method: 'POST', body: 'x', headers: { authorization: 'Bearer t', 'content-type': 'application/octet-stream' } });
    try {
      await configured.apply(base(true));
      const r = await write();
      expect(r.status).toBe(410);
      expect(await r.json()).toMatchObject({ code: 'tenant_retired' });
      expect((await app.request('/old/checkpoint')).status).toBe(200);
      const health = await app.request('/healthz');
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', tenants: { old: { retired: true, writable: true } } });
      const metrics = await (await app.request('/metrics')).text();
      expect(metrics).toMatch(/^tlog_tenants\{state="retired"\} 1$/m);
      expect(metrics).toMatch(/^tlog_tenants\{state="serving"\} 0$/m);
      expect((await configured.apply(base(false))).applied).toEqual(['old: no longer retired']);
      expect((await write()).status).toBe(200);
      expect((await configured.apply(base(true))).applied).toEqual(['old: retired']);
      expect((await write()).status).toBe(410);
    } finally {
      await registry.closeAll();
    }
  }, 60_000);
});
