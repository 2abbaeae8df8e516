/**
 * The log side of c2sp.org/tlog-witness: POST <submission prefix>/add-checkpoint to one witness
 * URL, with a consistency proof from the size the witness last cosigned. One request per URL
 * even when several keys live there (tessera#799/#1028), and the size re-learned from every 409
 * body (text/x.tlog.size) rather than cached forever.
 */
import { parseCanonicalDecimal } from '../decimal.js';
import { errorChain, TlogError, ErrorCode } from '../errors.js';
import { encodeBase64, parseNote, type NoteSignature } from '../note/note.js';
import type { PolicyWitness } from '../note/witness-policy.js';

export interface CosignResult {
  /** Cosignature lines that verified against one of this URL's witness keys. */
  readonly signatures: { witness: string; signature: NoteSignature }[];
  /**
   * Lines from one of this URL's witness keys that do not verify (ignored, never stored): the
   * witness, or something between us, is broken.
   */
  readonly ignored: number;
  /**
   * Lines from keys the policy does not list at this URL (ignored, as c2sp.org/signed-note
   * says of unknown keys): expected, e.g. the ML-DSA-44 cosignature of a witness whose policy
   * lists only its Ed25519 key. As "name+keyID hex".
   */
  readonly unlisted: readonly string[];
}

export class WitnessEndpoint {
  /** The size the witness last said it cosigned; null until we learn it. */
  knownSize: number | null = null;

  constructor(
    readonly url: string,
    readonly witnesses: readonly PolicyWitness[],
    private readonly timeoutMs = 10_000,
  ) {}

  private async post(body: string): Promise<{ status: number; type: string; text: string }> {
    let res: Response;
    try {
      res = await fetch(`${this.url}/add-checkpoint`, {
        method: 'POST',
        body,
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new TlogError(ErrorCode.unavailable, `witness ${this.url}: ${errorChain(e)}`, { cause: e });
    }
    // Bounded read: a witness answers a few lines.
    const text = (await res.text()).slice(0, 1 << 20);
    return { status: res.status, type: res.headers.get('content-type') ?? '', text };
  }

  /**
   * Asks the witness to cosign `note` (a checkpoint of size `size`). `proof(old)` gives the
   * consistency proof from old to size. Retries once after a 409 that tells the right size.
   */
  async cosign(note: string, size: number, proof: (oldSize: number) => Promise<Uint8Array[]>): Promise<CosignResult> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const old = this.knownSize ?? 0;
      if (old > size)
        throw new TlogError(ErrorCode.conflict, `witness ${this.url} has cosigned size ${old}, beyond ${size}: is another log using this origin?`);
      const lines = old === 0 ? [] : (await proof(old)).map(encodeBase64);
      const body = `old ${old}\n${lines.map((l) => `${l}\n`).join('')}\n${note}`;
      const res = await this.post(body);
      if (res.status === 200) {
        this.knownSize = size;
        return this.verifyLines(note, res.text);
      }
      if (res.status === 409) {
        // c2sp.org/tlog-witness: the body is the witness's size and a newline.
        const m = /^([0-9]+)\n$/.exec(res.text);
        const learned = m ? parseCanonicalDecimal(m[1]!) : null;
        if (learned === null || !res.type.startsWith('text/x.tlog.size')) {
          throw new TlogError(ErrorCode.verification, `witness ${this.url}: 409 without a text/x.tlog.size body`);
        }
        this.knownSize = learned;
        continue;
      }
      throw new TlogError(ErrorCode.unavailable, `witness ${this.url}: HTTP ${res.status}: ${res.text.slice(0, 200).trim()}`);
    }
    throw new TlogError(ErrorCode.unavailable, `witness ${this.url}: size changed under us twice`);
  }

  /** Keeps only the returned lines that verify against this URL's witness keys. */
  private verifyLines(note: string, body: string): CosignResult {
    if (!/^(\u2014 [^\n]*\n)+$/u.test(body)) throw new TlogError(ErrorCode.verification, `witness ${this.url}: response is not cosignature lines`);
    const text = parseNote(note).text;
    let sigs: readonly NoteSignature[];
    try {
      sigs = parseNote(`${text}\n${body}`).signatures;
    } catch (e) {
      throw new TlogError(ErrorCode.verification, `witness ${this.url}: ${(e as Error).message}`);
    }
    const out: CosignResult['signatures'] = [];
    const unlisted: string[] = [];
    let ignored = 0;
    for (const s of sigs) {
      const w = this.witnesses.find((x) => x.verifier.name === s.name && x.verifier.keyID === s.keyID);
      if (!w) unlisted.push(`${s.name}+${s.keyID.toString(16).padStart(8, '0')}`);
      else if (w.verifier.verify(text, s.signature)) out.push({ witness: w.name, signature: s });
      else ignored++;
    }
    return { signatures: out, ignored, unlisted };
  }
}
