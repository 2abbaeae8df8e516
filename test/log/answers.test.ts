import { describe, expect, it } from 'vitest';
import { Answers } from '../../src/log/answers.js';
import type { AppendResult } from '../../src/log/batch.js';

const result = (index: number): AppendResult => ({ index, leafHash: new Uint8Array(32), treeSize: index + 1, checkpoint: 'cp', proof: [], duplicate: false });

describe('Answers: the answers to one append call', () => {
  it('all() resolves once every entry is answered, in slot order, whenever it was asked', async () => {
    const early = new Answers(3);
    const all = early.all();
    early.settle(2, result(12));
    early.settle(0, result(10));
    let done = false;
    void all.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    early.settle(1, result(11));
    expect((await all).map((r) => r.index)).toEqual([10, 11, 12]);
    const late = new Answers(1);
    late.settle(0, result(5));
    expect((await late.all()).map((r) => r.index)).toEqual([5]);
  });

  it('of() answers one entry, asked before or after its answer, as often as asked', async () => {
    const a = new Answers(2);
    const before = [a.of(1), a.of(1)];
    a.settle(1, result(7));
    expect((await Promise.all(before)).map((r) => r.index)).toEqual([7, 7]);
    expect((await a.of(1)).index).toBe(7);
    a.settle(0, result(6));
    expect((await a.of(0)).index).toBe(6);
  });

  it('a failure rejects all() and that entry, not the others; a second answer of a slot changes nothing', async () => {
    const a = new Answers(3);
    const all = a.all();
    const zero = a.of(0);
    const one = a.of(1);
    a.settle(0, result(1));
    a.fail(1, new Error('disk full'));
    a.settle(1, result(99));
    a.settle(0, result(98));
    await expect(all).rejects.toThrow('disk full');
    await expect(one).rejects.toThrow('disk full');
    await expect(a.of(1)).rejects.toThrow('disk full');
    expect((await zero).index).toBe(1);
    a.settle(2, result(3));
    expect((await a.of(2)).index).toBe(3);
    // all() asked after the failure rejects too (the first failure).
    a.fail(2, new Error('second'));
    await expect(a.all()).rejects.toThrow('disk full');
    const b = new Answers(1);
    b.fail(0, new Error('stopped'));
    await expect(b.all()).rejects.toThrow('stopped');
  });
});
