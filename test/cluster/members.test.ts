/**
 * Cluster membership (src/cluster/members.ts) on the POSIX store, with hand-driven clocks, and
 * rendezvous hashing: who counts as live is decided on each node's own clock, exactly at the ttl.
 */
import { describe, expect, it } from 'vitest';
import { Membership, memberKey, preferredNode } from '../../src/cluster/members.js';
import { PosixStore } from '../../src/storage/posix-store.js';
import { thrownBy } from '../helpers/errors.js';
import { tempDirPerTest } from '../helpers/temp-dirs.js';

const TTL = 3000;
const tmp = tempDirPerTest('tlog-members-');

function node(store: PosixStore, url: string) {
  const clock = { t: 1_000_000 };
  return { m: new Membership(store, url, `${url} test`, TTL, () => clock.t), clock };
}

describe('membership', () => {
  it('a node that stops writing its member object is live until exactly one ttl after this node saw its last write', async () => {
    const store = new PosixStore(tmp.dir);
    const a = node(store, 'http://a:1');
    const b = node(store, 'http://b:1');
    await a.m.heartbeat();
    await b.m.heartbeat();
    expect((await a.m.live()).map((x) => x.url)).toEqual(['http://a:1', 'http://b:1']);
    // b stops; a keeps writing and looking.
    a.clock.t += TTL - 1;
    await a.m.heartbeat();
    expect((await a.m.live()).map((x) => x.url)).toEqual(['http://a:1', 'http://b:1']);
    a.clock.t += 1;
    expect((await a.m.live()).map((x) => x.url)).toEqual(['http://a:1']);
    // b comes back: live again at once, live since now (for hand-overs, see node.ts).
    await b.m.heartbeat();
    const back = await a.m.live();
    expect(back.map((x) => x.url)).toEqual(['http://a:1', 'http://b:1']);
    expect(back.find((x) => x.url === 'http://b:1')!.liveSince).toBe(a.clock.t);
  });

  it('a restarted node (same URL, new incarnation) takes its member object over', async () => {
    const store = new PosixStore(tmp.dir);
    const first = node(store, 'http://a:1');
    await first.m.heartbeat();
    const second = node(store, 'http://a:1');
    await second.m.heartbeat();
    await second.m.heartbeat();
    const o = await store.get(memberKey('http://a:1'));
    expect(JSON.parse(Buffer.from(o!.bytes).toString())).toMatchObject({ url: 'http://a:1' });
  });

  it('refuses an advertised URL that is not http(s)://host...', () => {
    const store = new PosixStore(tmp.dir);
    expect(thrownBy<Error>(() => new Membership(store, '10.0.0.1:8080', 'h', TTL)).message).toMatch(
      /advertised URL "10.0.0.1:8080": want http\(s\):\/\/host:port/,
    );
    expect(() => new Membership(store, 'http://10.0.0.1:8080', 'h', TTL)).not.toThrow();
  });
});

describe('rendezvous hashing', () => {
  it('every node computes the same preferred node, and removing one node moves only its own tenants', () => {
    const urls = ['http://a:1', 'http://b:1', 'http://c:1'];
    const tenants = Array.from({ length: 300 }, (_, i) => `t${i}`);
    const before = new Map(tenants.map((t) => [t, preferredNode(t, urls)]));
    expect(new Map(tenants.map((t) => [t, preferredNode(t, [...urls].reverse())]))).toEqual(before);
    const counts = urls.map((u) => tenants.filter((t) => before.get(t) === u).length);
    for (const n of counts) expect(n).toBeGreaterThan(50);
    const after = new Map(tenants.map((t) => [t, preferredNode(t, ['http://a:1', 'http://c:1'])]));
    for (const t of tenants) if (before.get(t) !== 'http://b:1') expect(after.get(t)).toBe(before.get(t));
    expect(preferredNode('t0', [])).toBeUndefined();
  });
});
