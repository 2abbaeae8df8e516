/**
 * The witness: c2sp.org/tlog-witness add-checkpoint, decided and persisted here, without HTTP
 * (app.ts maps results onto responses).
 *
 * Order of checks, each with the status the spec gives it:
 *   400  malformed body, note or checkpoint (including a non-canonical `old` such as "01")
 *   404  unknown origin
 *   403  no signature from a trusted key, or a trusted name+ID whose signature fails
 *   400  old > size (checked before the 409, c2sp digest §10.4)
 *   -- per-log lock taken here --
 *   409  old != the last cosigned size (0 if none); body "<size>\n", text/x.tlog.size
 *   422  size 0 with a root other than SHA-256(""); a proof with old 0; old == size with
 *        another root; a consistency proof that does not verify
 *   200  our cosignature lines, after the new state is durable
 *
 * Atomicity (c2sp.org/tlog-witness: "the size check and the persist MUST be atomic"): every
 * request for one origin runs its check-sign-persist under that origin's async mutex, and the
 * in-memory state moves only after the store said the new state is durable. So two requests
 * racing from the same old size cannot both win, and a later one can never roll the state
 * back. A failed save leaves the log's cached state unknown: the next request re-reads it from
 * the store, which holds either the old state or the new one (the store's contract).
 *
 * Extension lines: the 0x04 cosignature covers them (cosignature/v1 signs the whole text); the
 * 0x06 subtree/v1 message does not. We cosign such checkpoints with 0x04 only: a 0x06 line
 * would be a signature whose statement leaves part of the note unsigned, and our own verifier,
 * sunlight's and the spec's advice all treat it as unverifiable.
 */
import { EMPTY_ROOT, equalHashes } from '../src/merkle/hash.js';
import { verifyConsistency } from '../src/merkle/proof.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from '../src/note/checkpoint.js';
import { formatNote, formatSignatureLine, openNote, parseNote, type NoteSignature } from '../src/note/note.js';
import type { LogConfig, WitnessConfig } from './config.js';
import { EvidenceReason, type EvidenceSink } from './evidence.js';
import type { Clock, WitnessKeys } from './keys.js';
import { parseAddCheckpointRequest } from './request.js';
import { emptyState, type LogState, type StateStore } from './state.js';

export const SIZE_CONTENT_TYPE = 'text/x.tlog.size';
export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

export type AddCheckpointStatus = 200 | 400 | 403 | 404 | 409 | 422;

export interface AddCheckpointResult {
  readonly status: AddCheckpointStatus;
  readonly contentType: string;
  readonly body: string;
}

export interface WitnessEvents {
  /** A request was refused with evidence of misbehaviour, or evidence could not be written. */
  warn?(message: string): void;
  /** A checkpoint was cosigned (tests and logs). */
  cosigned?(origin: string, treeSize: number): void;
}

export interface WitnessOptions {
  readonly config: WitnessConfig;
  readonly keys: WitnessKeys;
  readonly store: StateStore;
  readonly evidence: EvidenceSink;
  /** POSIX seconds for cosignature timestamps. Default: the system clock. */
  readonly clock?: Clock;
  readonly events?: WitnessEvents;
}

const systemClock: Clock = () => Math.floor(Date.now() / 1000);

function reply(status: AddCheckpointStatus, body: string, contentType = TEXT_CONTENT_TYPE): AddCheckpointResult {
  return { status, body, contentType };
}

/** Safe concurrently: requests for one log are serialized, different logs run in parallel. */
export class Witness {
  readonly config: WitnessConfig;
  readonly keys: WitnessKeys;
  private readonly store: StateStore;
  private readonly evidence: EvidenceSink;
  private readonly clock: Clock;
  private readonly events: WitnessEvents;
  /** Known states by origin; absent = not read yet, or unknown after a failed save. */
  private readonly states = new Map<string, LogState>();
  /** Tail of each origin's chain of requests. */
  private readonly locks = new Map<string, Promise<void>>();
  private readonly byHash = new Map<string, LogConfig>();

  constructor(o: WitnessOptions) {
    this.config = o.config;
    this.keys = o.keys;
    this.store = o.store;
    this.evidence = o.evidence;
    this.clock = o.clock ?? systemClock;
    this.events = o.events ?? {};
    if (o.keys.name !== o.config.name) throw new Error(`witness keys are named ${o.keys.name}, config says ${o.config.name}`);
    for (const l of o.config.logs.values()) this.byHash.set(l.originHash, l);
  }

  /** Reads every configured log's state, so corrupt state stops the witness at start. */
  async load(): Promise<void> {
    for (const origin of this.config.logs.keys()) {
      const s = await this.store.read(origin);
      this.states.set(origin, s ?? emptyState(origin));
    }
  }

  /** The last cosigned size of a log (0 if none), for tests and status. */
  async treeSize(origin: string): Promise<number> {
    return this.withLock(origin, async () => (await this.stateOf(origin)).treeSize);
  }

  /** GET <hex sha256(origin)>/checkpoint: the latest cosigned checkpoint, or null. */
  latestCheckpoint(originHashHex: string): string | null {
    const log = this.byHash.get(originHashHex);
    if (!log) return null;
    const s = this.states.get(log.origin);
    return s && s.note !== '' ? s.note : null;
  }

  private async withLock<T>(origin: string, f: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(origin) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.locks.set(origin, tail);
    await prev;
    try {
      return await f();
    } finally {
      release();
      if (this.locks.get(origin) === tail) this.locks.delete(origin);
    }
  }

  private async stateOf(origin: string): Promise<LogState> {
    let s = this.states.get(origin);
    if (!s) {
      s = (await this.store.read(origin)) ?? emptyState(origin);
      this.states.set(origin, s);
    }
    return s;
  }

  /** POST add-checkpoint. Throws only for internal failures (the store), which are 500s. */
  async addCheckpoint(body: string): Promise<AddCheckpointResult> {
    const req = parseAddCheckpointRequest(body);
    if ('error' in req) return reply(400, `malformed request: ${req.error}\n`);

    let checkpoint: Checkpoint;
    let note;
    try {
      note = parseNote(req.note);
      checkpoint = parseCheckpoint(note.text);
    } catch (e) {
      return reply(400, `${(e as Error).message}\n`);
    }
    // c2sp digest §10.6: sign a re-encoding of what we parsed. The parsers accept only the
    // canonical form, so the re-encoding is the text the log signed; refuse anything else.
    const text = formatCheckpoint(checkpoint);
    if (text !== note.text) return reply(400, 'checkpoint is not in canonical form\n');

    const log = this.config.logs.get(checkpoint.origin);
    if (!log) return reply(404, `unknown origin ${JSON.stringify(checkpoint.origin.slice(0, 256))}\n`);

    // c2sp.org/signed-note + tlog-witness: unknown keys are ignored; a trusted name+ID whose
    // signature fails, or no trusted signature at all, is 403.
    let verified: readonly NoteSignature[];
    try {
      verified = openNote(note, log.verifiers).verified;
    } catch (e) {
      return reply(403, `${(e as Error).message}\n`);
    }

    // c2sp digest §10.4: 400 for old > size comes before the 409 check.
    if (req.old > checkpoint.treeSize) return reply(400, `old size ${req.old} is larger than the checkpoint size ${checkpoint.treeSize}\n`);

    // Only verified signatures are kept (c2sp digest §10.6).
    const received = formatNote({ text, signatures: verified });

    return this.withLock(log.origin, async () => {
      const state = await this.stateOf(log.origin);
      if (req.old !== state.treeSize) return reply(409, `${state.treeSize}\n`, SIZE_CONTENT_TYPE);

      const evidence = async (reason: EvidenceReason, why: string): Promise<AddCheckpointResult> => {
        this.events.warn?.(`${log.origin}: ${why} (${reason}); kept as evidence`);
        try {
          await this.evidence.record({
            time: this.clock(),
            origin: log.origin,
            reason,
            old: req.old,
            proof: req.proof,
            cosigned: state.note,
            received,
          });
        } catch (e) {
          this.events.warn?.(`${log.origin}: could not record evidence: ${(e as Error).message}`);
        }
        return reply(422, `${why}\n`);
      };

      // RFC 6962 2.1: the empty tree's root is SHA-256(""); a signed size-0 checkpoint with
      // another root is nonsense from the log's key.
      if (checkpoint.treeSize === 0 && !equalHashes(checkpoint.rootHash, EMPTY_ROOT)) {
        return evidence(EvidenceReason.emptyTreeWrongRoot, 'size 0 checkpoint with a root other than the empty tree hash');
      }
      // c2sp digest §10.4: a proof with old 0 is malformed for the spec (422), not ignored.
      if (req.old === 0 && req.proof.length > 0) return reply(422, 'consistency proof must be empty when old is 0\n');
      if (req.old === checkpoint.treeSize) {
        if (!equalHashes(state.rootHash, checkpoint.rootHash)) {
          return evidence(EvidenceReason.sameSizeOtherRoot, `checkpoint of size ${checkpoint.treeSize} has another root than the one cosigned`);
        }
        if (req.proof.length > 0) return reply(422, 'consistency proof must be empty when old equals the size\n');
      } else if (!verifyConsistency(req.old, checkpoint.treeSize, state.rootHash, checkpoint.rootHash, req.proof)) {
        return evidence(EvidenceReason.badConsistencyProof, `consistency proof from ${req.old} to ${checkpoint.treeSize} does not verify`);
      }

      const ts = this.clock();
      // c2sp.org/tlog-cosignature: ML-DSA-44 subtree/v1 does not sign extension lines.
      const ours = this.keys.cosign(text, ts, this.config.mldsa44 && checkpoint.extensions.length === 0);
      const next: LogState = {
        origin: log.origin,
        treeSize: checkpoint.treeSize,
        rootHash: checkpoint.rootHash,
        note: formatNote({ text, signatures: [...verified, ...ours] }),
      };
      // Persist before replying; move the cached state only once it is durable. A failed save
      // may or may not have replaced the file: forget the state, the next request re-reads it.
      try {
        await this.store.save(next);
      } catch (e) {
        this.states.delete(log.origin);
        throw e;
      }
      this.states.set(log.origin, next);
      this.events.cosigned?.(log.origin, next.treeSize);
      return reply(200, ours.map(formatSignatureLine).join(''));
    });
  }
}
