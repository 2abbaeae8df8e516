/**
 * How the log signs the checkpoint of a tree (c2sp.org/tlog-checkpoint, no extension lines) as
 * a signed note (c2sp.org/signed-note) with both of its keys: Ed25519 and ML-DSA-44.
 */
import { formatCheckpoint } from '../note/checkpoint.js';
import { formatNote, signNote, signNoteAsync } from '../note/note.js';
import type { LogKeys } from './keys.js';

/** Signs the checkpoint of a tree with the log's Ed25519 and ML-DSA-44 keys. */
export function signTree(origin: string, treeSize: number, rootHash: Uint8Array, keys: LogKeys): string {
  return formatNote(signNote(treeText(origin, treeSize, rootHash), [keys.ed25519.signer, keys.mldsa44.signer]));
}

/**
 * signTree's note, signed concurrently and, when the keys were loaded with an offload (a
 * SignPool), off this thread. Calls may overlap; each note is signed independently, so the
 * caller still decides that no two roots are ever signed for one size.
 */
export async function signTreeAsync(origin: string, treeSize: number, rootHash: Uint8Array, keys: LogKeys): Promise<string> {
  return formatNote(await signNoteAsync(treeText(origin, treeSize, rootHash), [keys.ed25519.signer, keys.mldsa44.signer]));
}

function treeText(origin: string, treeSize: number, rootHash: Uint8Array): string {
  return formatCheckpoint({ origin, treeSize, rootHash, extensions: [] });
}
