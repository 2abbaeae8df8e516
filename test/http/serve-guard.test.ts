/**
 * The guards as `tlog serve` runs them, in a process of its own (a client in another process
 * sees the connection as a real one would): a client still sending a large body without
 * credentials reads its 401 (the server drops the rest of the body for a moment before closing,
 * so no reset reaches the client first); malformed requests get the JSON error; the
 * configuration's `http` figures apply (a short headers timeout answers 408); a private tenant
 * does not show in /healthz.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashToken } from '../../src/http/auth.js';
import { rawExchange } from './helpers.js';
import { ensureDist } from '../helpers/dist.js';
import { spawnServe, writeConfig, type ServeProc } from '../helpers/tlog-cli.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
/** A service with the default figures, and one with a headers timeout too short for anything but its test. */
let p: ServeProc;
let hasty: ServeProc;

async function start(name: string, http: Record<string, number>): Promise<ServeProc> {
  const cwd = path.join(dir, name);
  mkdirSync(cwd);
  const cfg = path.join(cwd, 'tlog.json');
  writeConfig(cfg, {
    http,
    tenants: [
      { name: 'locked', origin: 'example.com/locked', credentials: { tokens: [hashToken('w')] } },
      { name: 'hidden', origin: 'example.com/hidden', credentials: { tokens: [hashToken('hw')], readTokens: [hashToken('hr')] } },
    ],
  });
  return spawnServe(['--config', cfg], { cwd });
}

beforeAll(async () => {
  ensureDist();
  dir = makeTempDir('tlog-serve-guard-');
  p = await start('default', {});
  hasty = await start('hasty', { headersTimeoutSeconds: 0.3 });
}, 240_000);
afterAll(async () => {
  for (const s of [p, hasty]) {
    if (s?.child.exitCode === null) {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  }
  removeDir(dir);
});

it('a client still sending 15 MiB without credentials reads its 401, every time', async () => {
  // fetch() writes the whole body before it looks at the answer: had the server closed at once
  // with the body unread, the reset would reach it first (EPIPE) about every other time.
  const body = new Uint8Array(15 << 20).fill(0x62);
  for (let i = 0; i < 8; i++) {
    const r = await fetch(`${p.url}/locked/append-batch`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('connection')).toBe('close');
    expect(await r.json()).toMatchObject({ code: 'unauthorized' });
  }
});

it('malformed requests get the JSON error', async () => {
  const a = await rawExchange(p.port, 'POST /locked/append HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n');
  expect(a.status).toBe(400);
  expect(JSON.parse(a.body)).toEqual({ error: "malformed HTTP request: Transfer-Encoding can't be present with Content-Length", code: 'bad_input' });
});

it("the configuration's headers timeout applies: headers that stop coming get 408", async () => {
  const a = await rawExchange(hasty.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
  expect(a.status).toBe(408);
  expect(JSON.parse(a.body)).toEqual({ error: 'request not received in time', code: 'request_timeout' });
});

it('a private tenant does not show in /healthz without its read token', async () => {
  const anon = (await (await fetch(`${p.url}/healthz`)).json()) as { tenantCount: number; tenants: Record<string, unknown> };
  expect(anon.tenantCount).toBe(2);
  expect(Object.keys(anon.tenants)).toEqual(['locked']);
  const reader = (await (await fetch(`${p.url}/healthz`, { headers: { authorization: 'Bearer hr' } })).json()) as { tenants: Record<string, unknown> };
  expect(Object.keys(reader.tenants).sort()).toEqual(['hidden', 'locked']);
});
