/**
 * Start-up with many tenants: the port answers at once, tenants open in parallel, each answers
 * 503 + Retry-After while it opens and serves as soon as it is open, whatever the others do.
 * Opening is held by a test hook (ApplyHooks.opening), so nothing here depends on timing; the
 * times themselves are measured by bench/startup.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../../src/cli/serve.js';
import { validateConfig, type ServiceConfig } from '../../src/config/config.js';
import { createApp } from '../../src/http/app.js';
import { hashToken } from '../../src/http/auth.js';
import { createLogger } from '../../src/http/observe.js';
import { silentLogger } from '../../src/log/log.js';
import { logPaths } from '../../src/tile-store/paths.js';
import { ConfiguredTenants, OPEN_CONCURRENCY } from '../../src/tenants/apply.js';
import { initLog, TenantRegistry } from '../../src/tenants/registry.js';
import { get } from './helpers.js';
import { writeConfig } from '../helpers/tlog-cli.js';
import { until } from '../helpers/wait.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('tlog-opening-');
});
afterAll(() => removeDir(dir));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const TOKEN = 'opening-token';
const tenant = (name: string) => ({ name, origin: `example.com/${name}`, credentials: { tokens: [hashToken(TOKEN)] } });

/** A configuration of these tenants under `root` (data roots absolute, as loadConfig makes them). */
function config(root: string, names: string[]): ServiceConfig {
  const cfg = validateConfig({ tenants: names.map(tenant) });
  return { ...cfg, tilesDir: path.join(root, 'tiles'), checkpointsDir: path.join(root, 'checkpoints'), stateDir: path.join(root, '.tlog') };
}

describe('tlog serve while tenants open', () => {
  it('the port answers at once; a tenant still opening gets 503 + Retry-After while an open one answers 200', async () => {
    const cwd = mkdtempSync(path.join(dir, 'serve-'));
    const cfgFile = path.join(cwd, 'tlog.json');
    writeConfig(cfgFile, { adminToken: hashToken('admin'), tenants: [tenant('slow'), tenant('fast')] });
    const gate = deferred();
    const ac = new AbortController();
    let bound!: (port: number) => void;
    const boundPort = new Promise<number>((r) => (bound = r));
    const prevLevel = process.env.TLOG_LOG_LEVEL;
    process.env.TLOG_LOG_LEVEL = 'warn';
    const served = serve({
      roots: { tilesRoot: cwd, checkpointsRoot: cwd, stateRoot: cwd },
      config: cfgFile,
      listen: '127.0.0.1:0',
      onBound: bound,
      openHooks: { opening: (name) => (name === 'slow' ? gate.promise : Promise.resolve()) },
      signal: ac.signal,
    });
    if (prevLevel === undefined) delete process.env.TLOG_LOG_LEVEL;
    else process.env.TLOG_LOG_LEVEL = prevLevel;
    try {
      const url = `http://127.0.0.1:${await boundPort}`;
      // The port answers before any tenant is open.
      const early = await fetch(`${url}/healthz`);
      expect(early.status).toBe(503);
      expect(await early.json()).toMatchObject({ status: 'starting' });
      await until('fast is open', async () => (await fetch(`${url}/fast/checkpoint`)).status === 200, 30_000);

      const slow = await fetch(`${url}/slow/checkpoint`);
      expect(slow.status).toBe(503);
      expect(slow.headers.get('retry-after')).toBe('1');
      expect(await slow.json()).toEqual({ error: 'tenant slow is opening (its log is being recovered and checked): try again shortly', code: 'unavailable' });
      const write = await fetch(`${url}/slow/append`, {
        method: 'POST',
        body: 'x',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
      });
      expect(write.status).toBe(503);
      expect(write.headers.get('retry-after')).toBe('1');
      for (const p of ['/slow/tile/0/000', '/slow/anchors', '/slow/', '/slow/vkeys']) expect((await fetch(`${url}${p}`)).status, p).toBe(503);
      // Unknown stays unknown.
      expect((await fetch(`${url}/nosuch/checkpoint`)).status).toBe(404);
      // The open one takes writes meanwhile.
      const ok = await fetch(`${url}/fast/append`, {
        method: 'POST',
        body: 'x',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
      });
      expect(ok.status).toBe(200);
      const health = await fetch(`${url}/healthz`, { headers: { authorization: 'Bearer admin' } });
      expect(health.status).toBe(503);
      expect(health.headers.get('retry-after')).toBe('1');
      expect(await health.json()).toMatchObject({ status: 'starting', tenantCount: 1, openingCount: 1, tenants: { fast: { treeSize: 1 } } });
      expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^tlog_tenants\{state="opening"\} 1$/m);

      gate.resolve();
      await until('slow is open', async () => (await fetch(`${url}/slow/checkpoint`)).status === 200, 30_000);
      const after = await fetch(`${url}/healthz`);
      expect(after.status).toBe(200);
      expect(await after.json()).toMatchObject({ status: 'ok', tenantCount: 2, openingCount: 0 });
    } finally {
      gate.resolve();
      ac.abort();
      await served;
    }
  }, 60_000);
});

describe('tlog serve asked to stop while tenants open', () => {
  it('refuses every request from that moment, never says it listens, and closes every log once the opening ends', async () => {
    const cwd = mkdtempSync(path.join(dir, 'stop-'));
    const cfgFile = path.join(cwd, 'tlog.json');
    writeConfig(cfgFile, { tenants: [tenant('slow'), tenant('fast')] });
    const gate = deferred();
    const ac = new AbortController();
    let bound!: (port: number) => void;
    const boundPort = new Promise<number>((r) => (bound = r));
    let listened = false;
    const prevLevel = process.env.TLOG_LOG_LEVEL;
    process.env.TLOG_LOG_LEVEL = 'warn';
    const roots = { tilesRoot: cwd, checkpointsRoot: cwd, stateRoot: cwd };
    const served = serve({
      roots,
      config: cfgFile,
      listen: '127.0.0.1:0',
      onBound: bound,
      onListening: () => (listened = true),
      openHooks: { opening: (name) => (name === 'slow' ? gate.promise : Promise.resolve()) },
      signal: ac.signal,
    });
    if (prevLevel === undefined) delete process.env.TLOG_LOG_LEVEL;
    else process.env.TLOG_LOG_LEVEL = prevLevel;
    let done = false;
    void served.then(() => (done = true));
    try {
      const url = `http://127.0.0.1:${await boundPort}`;
      const append = () =>
        fetch(`${url}/fast/append`, {
          method: 'POST',
          body: 'x',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
        });
      await until('fast is open', async () => (await fetch(`${url}/fast/checkpoint`)).status === 200, 30_000);
      expect((await append()).status).toBe(200);

      ac.abort();
      // From the stop on, the open tenant takes nothing more, though "slow" is still opening.
      const refused = await append();
      expect(refused.status).toBe(503);
      expect(await refused.json()).toEqual({ error: 'the service is shutting down', code: 'unavailable' });
      expect(done).toBe(false);

      gate.resolve();
      await served;
      expect(listened).toBe(false);
    } finally {
      gate.resolve();
      ac.abort();
      await served;
    }
    // Both logs were closed (their locks released): they open again, holding the one entry.
    const registry = new TenantRegistry();
    const configured = new ConfiguredTenants(registry, { logger: silentLogger }, silentLogger);
    const cfg = config(cwd, ['slow', 'fast']);
    await configured.apply(cfg);
    try {
      expect(registry.get('fast')?.log.treeSize).toBe(1);
      expect(registry.get('slow')?.log.treeSize).toBe(0);
    } finally {
      await registry.closeAll();
    }
  }, 60_000);
});

describe('ConfiguredTenants opens new tenants in parallel', () => {
  const N = 12;
  const names = Array.from({ length: N }, (_, i) => `t${i}`);

  it(`up to ${OPEN_CONCURRENCY} at once; a tenant held opening holds up no other, and gets 503 until it opens`, async () => {
    const root = mkdtempSync(path.join(dir, 'parallel-'));
    const registry = new TenantRegistry();
    let inside = 0;
    let most = 0;
    const gate = deferred();
    // Every tenant but t0 waits until as many as may open at once are inside the hook: opening
    // one at a time would never get there (the wait then fails after 20 s, and so does the test).
    const full = deferred();
    const hooks = {
      opening: async (name: string) => {
        inside++;
        most = Math.max(most, inside);
        if (inside === OPEN_CONCURRENCY) full.resolve();
        try {
          if (name === 't0') await gate.promise;
          else await Promise.race([full.promise, new Promise((_, reject) => setTimeout(() => reject(new Error('tenants did not open in parallel')), 20_000))]);
        } finally {
          inside--;
        }
      },
    };
    const configured = new ConfiguredTenants(registry, { logger: silentLogger }, silentLogger, hooks);
    const app = createApp(registry, { logger: createLogger({ level: 'silent' }) });
    const cfg = config(root, names);
    configured.announce(cfg);
    expect((await get(app, '/t5/checkpoint')).status).toBe(503);
    const applying = configured.apply(cfg);
    try {
      await until('every tenant but t0 is served', () => registry.names().length === N - 1, 30_000);
      expect(registry.isOpening('t0')).toBe(true);
      expect(registry.get('t0')).toBeUndefined();
      const held = await get(app, '/t0/checkpoint');
      expect(held.status).toBe(503);
      expect(held.headers.get('retry-after')).toBe('1');
      for (const n of names.slice(1)) expect((await get(app, `/${n}/checkpoint`)).status, n).toBe(200);
    } finally {
      gate.resolve();
    }
    const r = await applying;
    expect(r.applied).toEqual(names.map((n) => `+${n}`));
    expect(most).toBe(OPEN_CONCURRENCY);
    expect((await get(app, '/t0/checkpoint')).status).toBe(200);
    expect(registry.openingNames()).toEqual([]);
    await registry.closeAll();
  }, 120_000);

  it('a tenant that cannot be opened is named; the others added with it serve; it is no longer "opening"', async () => {
    const root = mkdtempSync(path.join(dir, 'broken-'));
    const cfg = config(root, ['good', 'broken']);
    // A log whose keys are gone: its configuration checks out, opening it fails.
    const broken = logPaths({ tilesRoot: cfg.tilesDir, checkpointsRoot: cfg.checkpointsDir, stateRoot: cfg.stateDir }, 'broken');
    await (await initLog(broken, 'example.com/broken')).close();
    rmSync(path.join(broken.stateDir, 'keys'), { recursive: true });
    const registry = new TenantRegistry();
    const configured = new ConfiguredTenants(registry, { logger: silentLogger }, silentLogger);
    const app = createApp(registry, { logger: createLogger({ level: 'silent' }) });
    await expect(configured.apply(cfg)).rejects.toThrow(/^tenant broken could not be opened: /);
    expect(registry.names()).toEqual(['good']);
    expect(registry.openingNames()).toEqual([]);
    expect((await get(app, '/good/checkpoint')).status).toBe(200);
    expect((await get(app, '/broken/checkpoint')).status).toBe(404);
    await registry.closeAll();
  }, 60_000);
});
