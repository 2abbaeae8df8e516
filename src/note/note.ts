/**
 * c2sp.org/signed-note: parse, format and open (verify) signed notes. Pure: no I/O, no clock.
 *
 * A note is UTF-8 text ending in "\n", one blank line, then one or more signature lines
 * `— <name> <base64(keyID[4] || signature)>\n`. The text runs up to the last blank line.
 */
import { TlogError, ErrorCode } from '../errors.js';

/** U+2014 EM DASH then a space: the start of every signature line. */
const SIG_PREFIX = '\u2014 ';
/** We accept at least the 16 signatures the spec requires, with room for cosigners and grease. */
export const MAX_SIGNATURES = 100;
/** Bound on a note's size: 100 ML-DSA-44 lines are ~330 KB; anything near this is hostile. */
export const MAX_NOTE_BYTES = 1 << 20;

export interface NoteSignature {
  readonly name: string;
  /** The 4-byte key ID, big-endian, as an unsigned 32-bit number. */
  readonly keyID: number;
  /** The signature bytes after the key ID. */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, ending in "\n". */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** What a verifier of one key knows: the name and key ID it answers to, and how to check. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyID: number;
  /** Returns whether `signature` (bytes after the key ID) is valid for `text`. Never throws. */
  verify(text: string, signature: Uint8Array): boolean;
}

export interface NoteSigner {
  readonly name: string;
  readonly keyID: number;
  /** Returns the signature bytes (after the key ID) over `text`. */
  sign(text: string): Uint8Array;
  /**
   * Optional: the same signature as sign() (same message, same framing, same errors as a
   * rejection), with the signing itself done elsewhere (a worker thread), so the calling
   * thread is free meanwhile. Safe to call concurrently.
   */
  signAsync?(text: string): Promise<Uint8Array>;
}

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict RFC 4648 standard base64 with padding; null when the text is not canonical. */
export function decodeBase64Strict(s: string): Uint8Array | null {
  if (!STD_BASE64.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  // Non-zero padding bits decode but do not round-trip: not canonical.
  if (b.toString('base64') !== s) return null;
  return b;
}

export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/**
 * c2sp.org/signed-note: key names are non-empty, contain no Unicode spaces and no "+".
 * Returns a reason when the name is invalid.
 */
export function checkKeyName(name: string): string | null {
  if (name.length === 0) return 'key name is empty';
  if (name.includes('+')) return `key name ${JSON.stringify(name)} contains "+"`;
  if (/[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u.test(name)) {
    return `key name ${JSON.stringify(name)} contains a space`;
  }
  return null;
}

function malformed(why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `malformed note: ${why}`);
}

/** c2sp.org/signed-note: the note is valid UTF-8 with no control characters but "\n". */
function checkNoteChars(s: string): void {
  // C0 controls other than "\n", DEL and the C1 controls are all Unicode control characters.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f)) {
      throw malformed(`control or invalid character U+${c.toString(16).padStart(4, '0')} at offset ${i}`);
    }
    // c2sp.org/signed-note: "MUST be valid UTF-8". A string with an unpaired surrogate has no
    // UTF-8 encoding (Buffer.from would turn it into U+FFFD, so signatures would cover other
    // bytes than the text): refuse it. Byte input never gets here with one (fatal decoder).
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c >= 0xdc00 || !(next >= 0xdc00 && next <= 0xdfff)) {
        throw malformed(`unpaired surrogate U+${c.toString(16)} at offset ${i}: not valid UTF-8`);
      }
      i++;
    }
  }
}

/** Decodes note bytes as UTF-8, rejecting invalid sequences. */
export function decodeNoteBytes(bytes: Uint8Array): string {
  if (bytes.length > MAX_NOTE_BYTES) throw malformed(`note is ${bytes.length} bytes, over ${MAX_NOTE_BYTES}`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw malformed('note is not valid UTF-8');
  }
}

/** Parses a signed note without verifying anything. Throws bad_input on any malformation. */
export function parseNote(input: string | Uint8Array): Note {
  const s = typeof input === 'string' ? input : decodeNoteBytes(input);
  if (s.length > MAX_NOTE_BYTES) throw malformed('note too large');
  checkNoteChars(s);
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const text = s.slice(0, split + 1);
  const sigBlock = s.slice(split + 2);
  if (sigBlock.length === 0 || !sigBlock.endsWith('\n')) throw malformed('signature block is empty or not newline-terminated');
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw malformed(`more than ${MAX_SIGNATURES} signatures`);
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) throw malformed(`signature line does not start with "— ": ${JSON.stringify(line.slice(0, 40))}`);
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    if (sp < 0 || rest.indexOf(' ', sp + 1) >= 0) throw malformed('signature line is not "— <name> <base64>"');
    const name = rest.slice(0, sp);
    const nameProblem = checkKeyName(name);
    if (nameProblem) throw malformed(nameProblem);
    const blob = decodeBase64Strict(rest.slice(sp + 1));
    if (!blob || blob.length < 5) throw malformed(`signature of ${name} is not base64 of a key ID and a signature`);
    const keyID = ((blob[0]! << 24) | (blob[1]! << 16) | (blob[2]! << 8) | blob[3]!) >>> 0;
    signatures.push({ name, keyID, signature: blob.subarray(4) });
  }
  return { text, signatures };
}

export function formatSignatureLine(sig: NoteSignature): string {
  const blob = Buffer.allocUnsafe(4 + sig.signature.length);
  blob.writeUInt32BE(sig.keyID, 0);
  blob.set(sig.signature, 4);
  return `${SIG_PREFIX}${sig.name} ${blob.toString('base64')}\n`;
}

/** Formats a note. The text must be non-empty, end in "\n" and hold no blank-line terminator issues. */
export function formatNote(note: Note): string {
  if (!note.text.endsWith('\n')) throw new Error('formatNote: text must end in a newline');
  if (note.signatures.length === 0) throw new Error('formatNote: a note needs a signature');
  return note.text + '\n' + note.signatures.map(formatSignatureLine).join('');
}

/** What signNote and signNoteAsync both require of the text before any signer sees it. */
function checkSignable(text: string): void {
  checkNoteChars(text);
  if (!text.endsWith('\n')) throw new TlogError(ErrorCode.badInput, 'note text must end in a newline');
}

/** Signs `text` with every signer, in order. */
export function signNote(text: string, signers: readonly NoteSigner[]): Note {
  checkSignable(text);
  return {
    text,
    signatures: signers.map((s) => ({ name: s.name, keyID: s.keyID, signature: s.sign(text) })),
  };
}

/** f's result as a promise; a synchronous throw becomes a rejection. */
function settle<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * signNote with the signers running concurrently: those with signAsync are all started first,
 * then the others sign synchronously while they run. The signatures keep the signers' order.
 * Rejects (never throws) with signNote's errors, or with a signer's failure; every signer's
 * promise gets a handler, so a second failure is never an unhandled rejection.
 */
export async function signNoteAsync(text: string, signers: readonly NoteSigner[]): Promise<Note> {
  checkSignable(text);
  const started = signers.map((s) => (s.signAsync ? settle(() => s.signAsync!(text)) : undefined));
  const sigs = await Promise.all(signers.map((s, i) => started[i] ?? settle(() => s.sign(text))));
  return { text, signatures: signers.map((s, i) => ({ name: s.name, keyID: s.keyID, signature: sigs[i]! })) };
}

export interface OpenedNote {
  readonly note: Note;
  /** Signatures that matched a known key and verified, one per key (duplicates collapsed). */
  readonly verified: readonly NoteSignature[];
  /** Signatures from keys we do not know: ignored, as the spec requires, but kept for the caller. */
  readonly unknown: readonly NoteSignature[];
}

/**
 * c2sp.org/signed-note verification: a signature counts only when both its name and key ID
 * match a known verifier; every such signature must verify (one failing rejects the note);
 * at least one must verify; unknown signatures are ignored.
 */
export function openNote(input: string | Uint8Array | Note, verifiers: readonly NoteVerifier[]): OpenedNote {
  const note = typeof input === 'object' && 'text' in input ? input : parseNote(input);
  const verified: NoteSignature[] = [];
  const unknown: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const sig of note.signatures) {
    const v = verifiers.find((k) => k.name === sig.name && k.keyID === sig.keyID);
    if (!v) {
      unknown.push(sig);
      continue;
    }
    if (!v.verify(note.text, sig.signature)) {
      throw new TlogError(ErrorCode.verification, `signature of ${sig.name} (key ${sig.keyID.toString(16).padStart(8, '0')}) does not verify`);
    }
    const id = `${sig.name}+${sig.keyID}`;
    if (!seen.has(id)) {
      seen.add(id);
      verified.push(sig);
    }
  }
  if (verified.length === 0) throw new TlogError(ErrorCode.verification, 'note has no signature from a known key');
  return { note, verified, unknown };
}
