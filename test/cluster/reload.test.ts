/**
 * Reloading the configuration of a cluster (POST /admin/reload, as SIGHUP does; tenants/apply.ts
 * in cluster mode): two `tlog serve` nodes on a real versitygw. A tenant added to the file is
 * taken by exactly one node and serves appends through either; a tenant removed from it is given
 * up (its log closed, its lease released) and answers 404 on both, with every append
 * acknowledged before or during the reload still in its log when it is added back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preferredNode } from '../../src/cluster/members.js';
import { ensureDist } from '../helpers/dist.js';
import { until } from '../helpers/wait.js';
import { append, auditTenant, TestCluster } from './helpers.js';

let c: TestCluster;

beforeAll(async () => {
  ensureDist();
  c = new TestCluster(2, 2, 3);
  await c.start();
}, 180_000);

afterAll(async () => {
  await c?.close();
});

/** The lease object of a tenant as stored (null: none). */
async function lease(t: string): Promise<{ holder: string; released: boolean; epoch: number } | null> {
  const bytes = await c.storeGet(`leases/${t}`);
  return bytes === null ? null : (JSON.parse(Buffer.from(bytes).toString()) as { holder: string; released: boolean; epoch: number });
}

async function reloadAll(): Promise<void> {
  for (let i = 0; i < c.nodes.length; i++) {
    const r = await c.reload(i);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
}

describe('reloading a cluster configuration', { timeout: 300_000 }, () => {
  it('a tenant added by reload is taken by exactly one node (its preferred) and serves appends through either node', async () => {
    await c.untilSpread();
    expect(await lease('t2')).toBeNull();
    await c.configure(['t0', 't1', 't2']);
    await reloadAll();
    const holder = await until('t2 taken', async () => {
      const l = await lease('t2');
      return l && !l.released ? l.holder : null;
    });
    expect(holder.split(' ')[0]).toBe(preferredNode('t2', c.urls()));
    const indexes: number[] = [];
    for (let i = 0; i < 2; i++) {
      const a = await until(`append to t2 through node ${i}`, async () => {
        const r = await append(c.url(i), 't2', `added-${i}`);
        return r.status === 200 ? r : null;
      });
      indexes.push(a.body!.index as number);
    }
    expect(indexes).toEqual([0, 1]);
    const holds = [await c.holds(0), await c.holds(1)];
    expect(holds.filter((h) => h.includes('t2'))).toHaveLength(1);
    expect((await lease('t2'))!.epoch).toBe(1);
  });

  it('a tenant removed by reload is released by its holder and answers 404 on both nodes; nothing acknowledged is lost', async () => {
    await c.untilSpread();
    const acked = new Map<number, string>();
    // Appends to t1 through both nodes while it is removed.
    let stop = false;
    let n = 0;
    const loaders = [0, 1].map(async (i) => {
      while (!stop) {
        const entry = `t1-${i}-${n++}`;
        const r = await append(c.url(i), 't1', entry);
        if (r.status === 200) {
          const at = r.body!.index as number;
          expect(acked.get(at) ?? entry, `index ${at} acknowledged twice`).toBe(entry);
          acked.set(at, entry);
        } else expect([404, 503], JSON.stringify(r.body)).toContain(r.status);
      }
    });
    await until('appends to t1 acknowledged', async () => acked.size >= 10);
    const before = await lease('t1');
    expect(before?.released).toBe(false);
    await c.configure(['t0', 't2']);
    await reloadAll();
    // Once the reloads have answered, t1 is given up: its lease released (same epoch: nobody
    // took it), and neither node serves it.
    expect(await lease('t1')).toMatchObject({ released: true, epoch: before!.epoch });
    for (let i = 0; i < 2; i++) {
      const r = await append(c.url(i), 't1', 'after-removal');
      expect(r.status, JSON.stringify(r.body)).toBe(404);
      expect((await fetch(`${c.url(i)}/t1/checkpoint`)).status).toBe(404);
      expect(await c.holds(i)).not.toContain('t1');
    }
    stop = true;
    await Promise.all(loaders);
    // The others are untouched.
    for (const t of ['t0', 't2']) expect((await append(c.url(0), t, `still-${t}`)).status).toBe(200);
    // Added back: every append acknowledged before and during the removal is at its index.
    await c.configure(['t0', 't1', 't2']);
    await reloadAll();
    await c.untilSpread();
    const size = await auditTenant(c, c.url(0), 't1', acked);
    expect(size).toBeGreaterThanOrEqual(acked.size);
    expect((await lease('t1'))!.epoch).toBe(before!.epoch + 1);
  });
});
