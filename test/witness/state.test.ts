/**
 * The witness's state: the size check and the persist are atomic (racing requests, failing
 * stores), state and keys survive a restart, keys are private, one process per data directory,
 * and the vectors' add-checkpoint example over a real socket.
 */
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isTlogError, ErrorCode } from '../../src/errors.js';
import { openNote, parseNote } from '../../src/note/note.js';
import { originHash } from '../../witness/config.js';
import { keysDir, WITNESS_KEY_FILES } from '../../witness/keys.js';
import { formatAddCheckpointRequest } from '../../witness/request.js';
import { runWitness, type RunningWitness, type RunWitnessOptions } from '../../witness/serve.js';
import { MemoryStateStore, type LogState } from '../../witness/state.js';
import { vectors } from '../vectors.js';
import { addBody, checkpointText, fixedClock, logPair, memoryWitness, ORIGIN, signedCheckpoint, TS } from './helpers.js';
import { rejectionOf } from '../helpers/errors.js';
import { sleep } from '../helpers/wait.js';
import { makeTempDir } from '../helpers/temp-dirs.js';

/** A memory store whose save() takes a while and records every size it persisted. */
class SlowStore extends MemoryStateStore {
  readonly saved: number[] = [];
  constructor(private readonly delayMs = 15) {
    super();
  }
  override async save(s: LogState): Promise<void> {
    await sleep(this.delayMs * Math.random());
    await super.save(s);
    this.saved.push(s.treeSize);
  }
}

/** A store that fails: before persisting anything, or after persisting (a crash before the reply). */
class FailingStore extends MemoryStateStore {
  mode: 'ok' | 'before' | 'after' = 'ok';
  override async save(s: LogState): Promise<void> {
    if (this.mode === 'before') throw new Error('disk on fire');
    await super.save(s);
    if (this.mode === 'after') throw new Error('lost power right after the rename');
  }
}

const nonDecreasing = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1]! <= x);

describe('atomic check-and-persist', () => {
  test('two racing requests from the same old size: exactly one wins, the other gets 409 with the winner size', async () => {
    for (const [first, second] of [
      [200, 300],
      [300, 200],
    ] as const) {
      const store = new SlowStore();
      const { post, witness } = memoryWitness({ store });
      await post(addBody(0, 100));
      const [a, b] = await Promise.all([post(addBody(100, first)), post(addBody(100, second))]);
      expect([a.status, b.status]).toEqual([200, 409]);
      expect(await b.text()).toBe(`${first}\n`);
      expect(await witness.treeSize(ORIGIN)).toBe(first);
      expect(store.saved).toEqual([100, first]);
    }
  });

  test('a storm of concurrent requests: one winner per round, the persisted sizes never go down', async () => {
    const store = new SlowStore(5);
    const { post, witness } = memoryWitness({ store });
    let size = 0;
    for (let round = 0; round < 6; round++) {
      const targets = Array.from({ length: 8 }, () => size + 1 + Math.floor(Math.random() * 200));
      const rs = await Promise.all(targets.map((t) => post(addBody(size, t))));
      const won = rs.map((r, i) => (r.status === 200 ? targets[i]! : -1)).filter((t) => t >= 0);
      expect(won).toHaveLength(1);
      for (const r of rs) if (r.status !== 200) expect(r.status).toBe(409);
      size = won[0]!;
      expect(await witness.treeSize(ORIGIN)).toBe(size);
    }
    expect(nonDecreasing(store.saved)).toBe(true);
  });

  test('racing N vs N+K where N+K also carries the proof from N: the state never rolls back to N', async () => {
    const store = new SlowStore();
    const { post, witness } = memoryWitness({ store });
    await post(addBody(0, 10));
    const big = post(addBody(10, 500));
    const small = post(addBody(10, 300));
    const [rb, rs] = await Promise.all([big, small]);
    expect(rb.status).toBe(200);
    expect(rs.status).toBe(409);
    // A stale client retrying with the small one learns 500 and cannot go back.
    expect((await post(addBody(10, 300))).status).toBe(409);
    expect(await witness.treeSize(ORIGIN)).toBe(500);
    expect(store.saved).toEqual([10, 500]);
  });

  test('while a save is in flight, GET serves the previous checkpoint and the request waits for the disk', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    class GatedStore extends MemoryStateStore {
      gated = false;
      override async save(s: LogState): Promise<void> {
        if (this.gated) await gate;
        await super.save(s);
      }
    }
    const store = new GatedStore();
    const { post, app } = memoryWitness({ store });
    await post(addBody(0, 10));
    const before = await (await app.request(`/${originHash(ORIGIN)}/checkpoint`)).text();
    store.gated = true;
    let answered = false;
    const pending = post(addBody(10, 20)).then((r) => ((answered = true), r));
    await sleep(20);
    expect(answered).toBe(false);
    expect(await (await app.request(`/${originHash(ORIGIN)}/checkpoint`)).text()).toBe(before);
    open();
    expect((await pending).status).toBe(200);
    expect(parseNote(await (await app.request(`/${originHash(ORIGIN)}/checkpoint`)).text()).text).toBe(checkpointText(20));
  });

  test('a store failing before it persisted: 500, nothing changed, the next request works', async () => {
    const store = new FailingStore();
    const { post, app, witness } = memoryWitness({ store });
    await post(addBody(0, 10));
    const before = await (await app.request(`/${originHash(ORIGIN)}/checkpoint`)).text();
    store.mode = 'before';
    expect((await post(addBody(10, 20))).status).toBe(500);
    store.mode = 'ok';
    expect(await witness.treeSize(ORIGIN)).toBe(10);
    expect(await (await app.request(`/${originHash(ORIGIN)}/checkpoint`)).text()).toBe(before);
    const r = await post(addBody(0, 20));
    expect(await r.text()).toBe('10\n');
    expect((await post(addBody(10, 20))).status).toBe(200);
  });

  test('a store failing after it persisted (crash before the reply): 500, and the witness never goes back', async () => {
    const store = new FailingStore();
    const { post, witness } = memoryWitness({ store });
    await post(addBody(0, 10));
    store.mode = 'after';
    expect((await post(addBody(10, 20))).status).toBe(500);
    store.mode = 'ok';
    // The state is re-read from the store: 20, which was never acknowledged but is durable.
    expect(await (await post(addBody(10, 15))).text()).toBe('20\n');
    expect(await witness.treeSize(ORIGIN)).toBe(20);
    expect((await post(addBody(20, 30))).status).toBe(200);
  });
});

describe('on disk', () => {
  const running: RunningWitness[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((w) => w.close()));
  });
  const config = { name: vectors.witness_key.name, logs: [{ origin: ORIGIN, keys: [vectors.log_key.vkey] }] };
  const start = async (dataDir: string, o: Partial<RunWitnessOptions> = {}) => {
    const w = await runWitness({ config, dataDir, listen: '127.0.0.1:0', clock: fixedClock(), log: () => {}, ...o });
    running.push(w);
    return w;
  };
  const post = (w: RunningWitness, body: string) => fetch(`${w.url}/add-checkpoint`, { method: 'POST', body });

  test('keys are created 0600 in a 0700 directory, and the vkeys are printed for both types', async () => {
    const dir = makeTempDir('witness-');
    const w = await start(dir);
    expect(statSync(keysDir(dir)).mode & 0o777).toBe(0o700);
    for (const f of Object.values(WITNESS_KEY_FILES)) {
      const p = path.join(keysDir(dir), f);
      expect(statSync(p).mode & 0o777).toBe(0o600);
      expect(await fsp.readFile(p, 'utf8')).toMatch(new RegExp(`^PRIVATE\\+KEY\\+${vectors.witness_key.name}\\+[0-9a-f]{8}\\+`));
    }
    const typeOf = (vkey: string) => Buffer.from(vkey.split('+')[2]!, 'base64')[0];
    expect(w.vkeys.cosignatureV1.startsWith(`${vectors.witness_key.name}+`)).toBe(true);
    expect(typeOf(w.vkeys.cosignatureV1)).toBe(0x04);
    expect(typeOf(w.vkeys.mldsa44)).toBe(0x06);
  });

  test('restart keeps keys and state; GET serves the last cosigned checkpoint', async () => {
    const dir = makeTempDir('witness-');
    let w = await start(dir);
    const vkeys = w.vkeys;
    expect((await post(w, addBody(0, 100))).status).toBe(200);
    expect((await post(w, addBody(100, 700))).status).toBe(200);
    await w.close();
    w = await start(dir);
    expect(w.vkeys).toEqual(vkeys);
    const r = await post(w, addBody(100, 800));
    expect(r.status).toBe(409);
    expect(await r.text()).toBe('700\n');
    const g = await fetch(`${w.url}/${originHash(ORIGIN)}/checkpoint`);
    const note = await g.text();
    expect(parseNote(note).text).toBe(checkpointText(700));
    expect(openNote(note, [logPair.verifier, w.witness.keys.verifiers.cosignatureV1, w.witness.keys.verifiers.mldsa44]).verified).toHaveLength(3);
    expect((await post(w, addBody(700, 800))).status).toBe(200);
  });

  test('a second witness on the same data directory fails at once', async () => {
    const dir = makeTempDir('witness-');
    await start(dir);
    const err = await rejectionOf(start(dir));
    expect(isTlogError(err, ErrorCode.locked)).toBe(true);
  });

  test('refuses a key readable by others, a key of another name, and a state file it did not cosign', async () => {
    const dir = makeTempDir('witness-');
    const w = await start(dir);
    await post(w, addBody(0, 5));
    await w.close();
    running.length = 0;
    const key = path.join(keysDir(dir), WITNESS_KEY_FILES.cosignatureV1);
    await fsp.chmod(key, 0o644);
    await expect(start(dir)).rejects.toThrow(/readable by others/);
    await fsp.chmod(key, 0o600);
    await expect(start(dir, { config: { ...config, name: 'other.example/w' } })).rejects.toThrow(/config names the witness other\.example\/w/);
    // A state file replaced by a checkpoint that only the log signed.
    const stateFile = path.join(dir, 'state', `${originHash(ORIGIN)}.checkpoint`);
    await fsp.writeFile(stateFile, signedCheckpoint(9));
    await expect(start(dir)).rejects.toThrow(/no valid cosignature of this witness/);
  });

  test('the vectors example: at 1000, old 1000 + proof to 70000 gives the expected Ed25519 line byte for byte', async () => {
    const dir = makeTempDir('witness-');
    await fsp.mkdir(keysDir(dir), { recursive: true, mode: 0o700 });
    await fsp.writeFile(path.join(keysDir(dir), WITNESS_KEY_FILES.cosignatureV1), vectors.witness_key.skey_TEST_ONLY + '\n', { mode: 0o600 });
    const w = await start(dir, { clock: fixedClock(TS) });
    const ex = vectors.witness_add_checkpoint_example;
    // Bring the witness to 1000 with the vectors' signed checkpoint.
    const first = await post(w, formatAddCheckpointRequest(0, [], vectors.checkpoint_1000.signed_note));
    expect(first.status).toBe(200);
    expect((await first.text()).split('\n')[0] + '\n').toBe(vectors.cosignature_v1_ed25519.cosignature_line);
    const probe = await post(w, formatAddCheckpointRequest(0, [], ex.signed_checkpoint_70000));
    expect(probe.status).toBe(409);
    expect(probe.headers.get('content-type')).toBe(ex.example_409_content_type);
    expect(await probe.text()).toBe(ex.example_409_body_if_witness_is_at_1000);
    const r = await post(w, ex.add_checkpoint_request_body);
    expect(r.status).toBe(200);
    const lines = (await r.text())
      .split('\n')
      .slice(0, -1)
      .map((l) => l + '\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(ex.expected_200_response_body_at_timestamp);
    // The stored checkpoint is the vectors' cosigned 70000 note plus our ML-DSA line.
    const g = await (await fetch(`${w.url}/${originHash(ORIGIN)}/checkpoint`)).text();
    expect(g).toBe(ex.cosigned_checkpoint_70000 + lines[1]);
  });
});
