/**
 * A witness process killed with SIGKILL at random moments while it cosigns (most of a
 * request's time is the durable write of the new state, so kills land between the check and
 * the persist, mid-write and mid-rename). After each kill a new process starts on the same data
 * directory, and its state must be the last acknowledged tree or the one in flight (persisted
 * but not yet answered): never smaller, never a different tree, always carrying our valid
 * cosignature. Then cosigning continues from there.
 *
 * Runs the compiled bin (dist/witness/main.js); compiles it first when missing or stale.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parsePrivateKey } from '../../src/note/keys.js';
import { openNote, parseNote } from '../../src/note/note.js';
import { derivePublicKey, keyPair } from '../../src/note/signers.js';
import { originHash } from '../../witness/config.js';
import { keysDir, WITNESS_KEY_FILES } from '../../witness/keys.js';
import { vectors } from '../vectors.js';
import { addBody, checkpointText, logPair, ORIGIN } from './helpers.js';
import { makeTempDir } from '../helpers/temp-dirs.js';
import { ensureDist, witnessBin } from '../helpers/dist.js';

beforeAll(() => ensureDist(), 240_000);

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Starts the bin; resolves with its URL once it listens. */
function startChild(config: string, data: string): Promise<{ child: ChildProcess; url: string; exited: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [witnessBin, 'serve', '--config', config, '--data', data, '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    const exited = new Promise<void>((r) => child.once('exit', () => (children.delete(child), r())));
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve({ child, url: m[1]!, exited });
    });
    child.once('exit', (code) => reject(new Error(`witness exited (${code}) before listening: ${err}`)));
  });
}

describe('witness killed mid-request', () => {
  test('restarts with the last acknowledged tree or the one in flight, never anything else', { timeout: 60_000 }, async () => {
    const dir = makeTempDir('witness-crash-');
    const config = path.join(dir, 'witness.json');
    const data = path.join(dir, 'data');
    writeFileSync(config, JSON.stringify({ name: vectors.witness_key.name, logs: [{ origin: ORIGIN, keys: [vectors.log_key.vkey] }] }));
    let acked = 0;
    /** The size of the request in flight when the kill came (equal to acked when none was). */
    let inFlight = 0;
    let kills = 0;
    for (let cycle = 0; cycle < 6; cycle++) {
      const { child, url, exited } = await startChild(config, data);
      // The state the new process serves must be the last acked tree, or the one in flight.
      const got = await fetch(`${url}/${originHash(ORIGIN)}/checkpoint`);
      const note = await got.text();
      if (cycle > 0 && got.status === 404) {
        // Nothing was ever persisted: only possible while nothing was acknowledged.
        expect(acked).toBe(0);
      } else if (cycle > 0) {
        expect(got.status).toBe(200);
        const ed = keyPair(parsePrivateKey(readFileSync(path.join(keysDir(data), WITNESS_KEY_FILES.cosignatureV1), 'utf8'), derivePublicKey));
        const ml = keyPair(parsePrivateKey(readFileSync(path.join(keysDir(data), WITNESS_KEY_FILES.mldsa44), 'utf8'), derivePublicKey));
        const size = Number(parseNote(note).text.split('\n')[1]);
        expect([acked, inFlight]).toContain(size);
        expect(parseNote(note).text).toBe(checkpointText(size));
        expect(openNote(note, [logPair.verifier, ed.verifier, ml.verifier]).verified).toHaveLength(3);
        acked = size;
      }
      // Cosign a growing tree: a few requests answered in full, then one that the kill
      // interrupts at a random moment (before the check, mid-write, mid-rename, or after the
      // answer). Kills are counted in requests, not in time, so a slow machine changes where
      // they land, never what the test asserts.
      const answered = 1 + Math.floor(Math.random() * 4);
      for (let k = 0; k < answered; k++) {
        inFlight = Math.min(acked + 1 + Math.floor(Math.random() * 7), 2048);
        const r = await fetch(`${url}/add-checkpoint`, { method: 'POST', body: addBody(acked, inFlight) });
        expect(r.status, await r.text()).toBe(200);
        acked = inFlight;
      }
      inFlight = Math.min(acked + 1 + Math.floor(Math.random() * 7), 2048);
      const last = fetch(`${url}/add-checkpoint`, { method: 'POST', body: addBody(acked, inFlight) }).then(
        async (r) => ({ status: r.status, body: await r.text() }),
        () => null, // killed mid-request
      );
      await new Promise((r) => setTimeout(r, Math.random() * 30));
      child.kill('SIGKILL');
      const answer = await last.catch(() => null);
      if (answer) {
        expect(answer.status, answer.body).toBe(200);
        acked = inFlight;
      }
      kills++;
      await exited;
    }
    expect(kills).toBe(6);
  });
});
