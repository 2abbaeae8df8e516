/**
 * Verifying a checkpoint against a log's keys and a witness policy: the log's signature must
 * verify, and the witnesses whose cosignatures verify must satisfy the policy's quorum.
 * Signatures from unknown keys are ignored (c2sp.org/signed-note). Pure: no I/O.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { parseNote, type Note, type NoteVerifier } from './note.js';
import { policySatisfied, type WitnessPolicy } from './witness-policy.js';

export interface VerifiedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: Note;
  /** Names of the policy witnesses whose cosignatures verified. */
  readonly witnesses: string[];
}

export function verifyCheckpoint(input: string | Uint8Array, logKeys: readonly NoteVerifier[], policy?: WitnessPolicy): VerifiedCheckpoint {
  const note = parseNote(input);
  const byKey = (v: NoteVerifier) => note.signatures.filter((s) => s.name === v.name && s.keyID === v.keyID);
  let logOk = false;
  for (const v of logKeys) {
    for (const s of byKey(v)) {
      if (!v.verify(note.text, s.signature)) throw new TlogError(ErrorCode.verification, `log signature of ${v.name} does not verify`);
      logOk = true;
    }
  }
  if (!logOk) throw new TlogError(ErrorCode.verification, 'checkpoint has no signature from the log');
  const checkpoint = parseCheckpoint(note.text);
  const witnesses: string[] = [];
  if (policy) {
    for (const w of policy.witnesses.values()) {
      const sigs = byKey(w.verifier);
      if (sigs.length === 0) continue;
      // A known witness key whose signature fails rejects the note (c2sp.org/signed-note SHOULD).
      if (!sigs.every((s) => w.verifier.verify(note.text, s.signature))) {
        throw new TlogError(ErrorCode.verification, `cosignature of witness ${w.name} does not verify`);
      }
      witnesses.push(w.name);
    }
    if (!policySatisfied(policy, new Set(witnesses))) {
      throw new TlogError(ErrorCode.verification, `witness policy not satisfied: cosigned by ${witnesses.length ? witnesses.join(', ') : 'no witness'}`);
    }
  }
  return { checkpoint, note, witnesses };
}
