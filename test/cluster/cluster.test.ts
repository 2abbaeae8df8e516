/**
 * Three `tlog serve` nodes sharing ten tenants of one bucket (a real versitygw), as real
 * processes on loopback: the tenants spread over the nodes by their leases, any node answers
 * for any tenant (forwarding to the holder), a SIGKILLed holder's tenants are taken over, and a
 * node cut off from the store stops acknowledging and comes back with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preferredNode } from '../../src/cluster/members.js';
import { FORWARDED_BY } from '../../src/http/forward.js';
import { ensureDist } from '../helpers/dist.js';
import { until } from '../helpers/wait.js';
import { signHttpRequest } from '../../src/client/signed-request.js';
import { append, auditTenant, auth, CLIENT, killUnderLoad, TestCluster } from './helpers.js';

const TTL_SECONDS = 3;
let c: TestCluster;

beforeAll(async () => {
  ensureDist();
  c = new TestCluster(3, 10, TTL_SECONDS);
  await c.start();
}, 180_000);

afterAll(async () => {
  await c?.close();
});

// Take-overs wait out lease ttls: bounds for a busy machine, not times asserted.
describe('a cluster of three nodes and ten tenants', { timeout: 300_000 }, () => {
  it('spreads the tenants: each is held by exactly one node, the one rendezvous hashing prefers among the live ones', async () => {
    const holders = await c.untilSpread();
    expect([...holders.keys()].sort()).toEqual([...c.tenants].sort());
    for (const [t, h] of holders) expect(h).toBe(preferredNode(t, c.urls()));
    // Every node serves exactly the tenants whose lease names it: appends through the holder answer.
    for (const t of c.tenants) {
      const r = await until(`append to ${t} through its holder`, async () => {
        const a = await append(holders.get(t)!, t, `spread-${t}`);
        return a.status === 200 ? a : null;
      });
      expect(r.body).toMatchObject({ index: 0 });
    }
  });

  it('any node answers for any tenant: appends through the others are forwarded to the holder, reads give the holder bytes and headers', async () => {
    const holders = await c.untilSpread();
    for (const t of c.tenants) {
      const indexes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const a = await append(c.url(i), t, `any-${t}-${i}`);
        expect(a.status, JSON.stringify(a.body)).toBe(200);
        indexes.push(a.body!.index as number);
      }
      // One log: the three appends got three consecutive indexes of it.
      expect(indexes).toEqual([1, 2, 3]);
      const direct = await fetch(`${holders.get(t)}/${t}/checkpoint`);
      const directBody = await direct.text();
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${c.url(i)}/${t}/checkpoint`);
        expect(r.status).toBe(200);
        expect(await r.text()).toBe(directBody);
        expect(r.headers.get('cache-control')).toBe(direct.headers.get('cache-control'));
        expect(r.headers.get('content-type')).toBe(direct.headers.get('content-type'));
        const tile = await fetch(`${c.url(i)}/${t}/tile/entries/000.p/4`, { headers: { 'accept-encoding': 'gzip' } });
        const tileDirect = await fetch(`${holders.get(t)}/${t}/tile/entries/000.p/4`, { headers: { 'accept-encoding': 'gzip' } });
        expect(tile.status).toBe(200);
        expect(tile.headers.get('content-encoding')).toBe(tileDirect.headers.get('content-encoding'));
        expect(tile.headers.get('etag')).toBe(tileDirect.headers.get('etag'));
        expect(Buffer.from(await tile.arrayBuffer())).toEqual(Buffer.from(await tileDirect.arrayBuffer()));
      }
    }
  });

  it('credentials are checked by the holder, and a request forwarded once is never forwarded again (503 + Retry-After)', async () => {
    const holders = await c.untilSpread();
    const t = c.tenants[0]!;
    const other = c.urls().find((u) => u !== holders.get(t))!;
    const noToken = await append(other, t, 'no-token', {});
    expect(noToken.status).toBe(401);
    const wrong = await append(other, t, 'wrong-token', { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    const looped = await append(other, t, 'looped', { ...auth, [FORWARDED_BY]: 'http://127.0.0.1:1' });
    expect(looped.status).toBe(503);
    expect(looped.headers.get('retry-after')).toBe('1');
    expect(looped.body).toMatchObject({ code: 'unavailable' });
    // At the holder itself the guard changes nothing: it serves the tenant.
    const atHolder = await append(holders.get(t)!, t, 'guard-at-holder', { ...auth, [FORWARDED_BY]: other });
    expect(atHolder.status).toBe(200);
  });

  it('SIGKILL of a tenant holder under load: another node takes its tenants over with a higher epoch, and the node restarted gets its share back', async () => {
    const holders = await c.untilSpread();
    const t = c.tenants[1]!;
    const victimUrl = holders.get(t)!;
    const victim = c.nodeOf(victimUrl);
    const survivor = c.urls().find((u) => u !== victimUrl)!;
    const epochBefore = await c.leaseEpoch(t);
    const victimTenants = c.tenants.filter((x) => holders.get(x) === victimUrl);
    // Load through a survivor while the holder dies.
    let stop = false;
    let n = 0;
    const loads = Array.from({ length: 4 }, async () => {
      while (!stop) await append(survivor, t, `load-${n++}`);
    });
    await until('some appends acknowledged under load', async () => (await append(survivor, t, `pre-${n++}`)).status === 200);
    // A signed request the holder accepts (RFC 9421, counter 1): after the take-over, the same
    // bytes are a replay on the new holder too (the counters are in the store, not the cache).
    const signedBody = Buffer.from('signed-before-the-kill');
    const signed = await signHttpRequest({
      clientID: CLIENT.id,
      seed: CLIENT.seed,
      origin: `cluster.test/${t}`,
      method: 'POST',
      url: `/${t}/append`,
      body: signedBody,
      counter: 1,
    });
    expect((await append(victimUrl, t, signedBody.toString(), signed)).status).toBe(200);
    await c.kill(victim.index);
    const after = await until(
      'an append to the victim tenant acknowledged again',
      async () => {
        const a = await append(survivor, t, `post-${n++}`);
        return a.status === 200 ? a : null;
      },
      60_000,
    );
    stop = true;
    await Promise.all(loads);
    expect(after.status).toBe(200);
    const newHolder = await c.holder(t);
    expect(newHolder).not.toBe(victimUrl);
    const replay = await append(newHolder!, t, signedBody.toString(), signed);
    expect(replay.status, JSON.stringify(replay.body)).toBe(401);
    expect(String(replay.body?.error)).toMatch(/counter 1 of client c is not above its last counter 1/);
    expect(await c.leaseEpoch(t)).toBeGreaterThan(epochBefore);
    // Every tenant the victim held is served again by the two others.
    const live = c.urls().filter((u) => u !== victimUrl);
    for (const x of victimTenants) {
      await until(`tenant ${x} taken over`, async () => (await append(survivor, x, `over-${x}-${n++}`)).status === 200, 60_000);
      expect(live).toContain(await c.holder(x));
    }
    // Back on the same URL: it prefers the same tenants again, and gets them handed back.
    await c.startNode(victim);
    await c.untilSpread(c.urls());
    for (const x of victimTenants) {
      await until(`tenant ${x} answers on its restarted node`, async () => (await append(c.url(victim.index), x, `back-${x}-${n++}`)).status === 200, 60_000);
    }
  });

  it('repeated SIGKILLs of holders under load: every acknowledged entry is at its index, the history has one root per size, verify and the Go checker pass', async () => {
    await c.untilSpread();
    const run = await killUnderLoad(c, 3);
    await c.untilSpread();
    for (const t of c.tenants) {
      const size = await auditTenant(c, c.url(0), t, run.acked.get(t)!);
      expect(size).toBeGreaterThanOrEqual(run.acked.get(t)!.size);
    }
  });

  it('a node cut off from the store stops acknowledging, and takes appends again once the store is back', async () => {
    await c.untilSpread();
    await c.s3.stop();
    for (const t of c.tenants) {
      await until(
        `appends to ${t} no longer acknowledged`,
        async () => {
          const answers = await Promise.all(c.urls().map((u) => append(u, t, `cut-${t}-${Math.random()}`)));
          return answers.every((a) => a.status !== 200);
        },
        60_000,
      );
    }
    await c.s3.restart();
    await c.untilSpread();
    for (const t of c.tenants) {
      await until(`appends to ${t} acknowledged again`, async () => (await append(c.url(0), t, `back-${t}-${Math.random()}`)).status === 200, 60_000);
    }
  });
});
