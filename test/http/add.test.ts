/**
 * POST /<t>/add, the write route of Tessera's conformance servers (body = the entry, answer = its
 * decimal index as text): the append path under another answer, so it keeps append's credentials,
 * limits and dedup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/merkle/hash.js';
import { bearer, json, makeEnv, post, tokenAuth, type AppEnv } from './helpers.js';

let env: AppEnv;

beforeAll(async () => {
  env = await makeEnv([{ name: 'open' }, { name: 'sec', auth: tokenAuth({ tokens: ['write-token'] }), limits: { maxBodyBytes: 100 } }]);
});
afterAll(() => env.close());

describe('POST /<t>/add', () => {
  it("answers the entry's index as decimal text, and the entry is in the log at that index", async () => {
    const log = env.registry.get('open')!.log;
    const answers: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await post(env.app, '/open/add', `add entry ${i}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
      answers.push(await r.text());
    }
    expect(answers).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    expect(log.treeSize).toBe(12);
    expect(Buffer.from(await log.leafHashAt(10))).toEqual(Buffer.from(leafHash(Buffer.from('add entry 10'))));
  });

  it("a duplicate answers with the first copy's index and adds nothing, also one first sent to /append", async () => {
    const log = env.registry.get('open')!.log;
    const size = log.treeSize;
    expect(await (await post(env.app, '/open/add', 'add entry 3')).text()).toBe('3');
    const first = await json<{ index: number }>(await post(env.app, '/open/append', 'sent to append first'));
    expect(await (await post(env.app, '/open/add', 'sent to append first')).text()).toBe(String(first.index));
    expect(log.treeSize).toBe(size + 1);
  });

  it('works un-prefixed with the tenant in X-Module-ID', async () => {
    const log = env.registry.get('open')!.log;
    const r = await post(env.app, '/add', 'un-prefixed add', { 'x-module-id': 'open' });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(String(log.treeSize - 1));
  });

  it('needs the credentials append needs: none or a wrong token is a 401 JSON error that adds nothing', async () => {
    const log = env.registry.get('sec')!.log;
    for (const headers of [{}, bearer('wrong-token')]) {
      const r = await post(env.app, '/sec/add', 'refused', headers);
      expect(r.status).toBe(401);
      expect(await json(r)).toMatchObject({ code: 'unauthorized' });
    }
    expect(log.treeSize).toBe(0);
    const ok = await post(env.app, '/sec/add', 'accepted', bearer('write-token'));
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('0');
  });

  it("keeps append's body limit: the limit is accepted, one byte over is a 413", async () => {
    const log = env.registry.get('sec')!.log;
    const size = log.treeSize;
    const over = await post(env.app, '/sec/add', 'x'.repeat(101), bearer('write-token'));
    expect(over.status).toBe(413);
    expect(await json(over)).toMatchObject({ code: 'too_large' });
    expect(log.treeSize).toBe(size);
    const at = await post(env.app, '/sec/add', 'y'.repeat(100), bearer('write-token'));
    expect(at.status).toBe(200);
    expect(await at.text()).toBe(String(size));
  });

  it('an empty entry is refused as on /append', async () => {
    const r = await post(env.app, '/open/add', '');
    expect(r.status).toBe(400);
    expect(await json(r)).toMatchObject({ code: 'bad_input' });
  });
});
