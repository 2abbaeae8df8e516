/**
 * The two ways a hashedrekord entry reaches Rekor, both as @sigstore/sign `Witness`es so that
 * @sigstore/sign's MessageSignatureBundleBuilder assembles the Sigstore bundle around them:
 *
 * - v1: @sigstore/sign's own RekorWitness (POST /api/v1/log/entries; on 409 it GETs the entry
 *   the Location header names). Its retries are off: the outbox owns retrying, across restarts.
 * - v2 (rekor-tiles): POST /api/v2/log/entries with our own client. @sigstore/sign 4.1.1 has a
 *   v2 path, but it always wraps the signer's key as an X.509 certificate, which a bare public
 *   key is not; we send `verifier.publicKey`. A v2 log has no GET-entry API: a 409 carries the
 *   existing index in `x-log-index`, and we rebuild the receipt from the log's tiles (the entry
 *   bundle gives the exact leaf, the tiles an inclusion proof in the published checkpoint).
 *
 * Errors come out as RekorError: `retryable` for network failures, timeouts, 408, 429 and 5xx
 * (the timestamp authority's too: see tsa.ts).
 */
import type { RekorWitness, SignatureBundle, VerificationMaterial, Witness } from '@sigstore/sign';
import type { TransparencyLogEntry } from '@sigstore/bundle';
import { PublicKeyDetails, TransparencyLogEntry as TLE } from '@sigstore/protobuf-specs';
import { CreateEntryRequest } from '@sigstore/protobuf-specs/rekor/v2';
import { isCanonicalDecimal } from '../decimal.js';
import { inclusionProof, verifyInclusion } from '../merkle/proof.js';
import { leafHash } from '../merkle/hash.js';
import { parseCheckpoint } from '../note/checkpoint.js';
import { parseNote } from '../note/note.js';
import { parseEntryBundle } from '../tiles/bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, tileWidthInTree } from '../tiles/layout.js';
import { ExpandedTile, MissingTileError, nodeReaderOver } from '../tiles/tree.js';
import { parseRetryAfter, type AnchorConfig } from './config.js';
import { classifySigstoreError, isRetryableStatus, RekorError, withDeadline } from './remote.js';
import { sigstoreSign } from './sigstore-sign.js';

export { RekorError } from './remote.js';

export function rekorV1Witness(cfg: AnchorConfig): Witness {
  const url = cfg.rekor.url;
  let inner: RekorWitness | null = null;
  return {
    async testify(content: SignatureBundle, publicKey: string): Promise<VerificationMaterial> {
      inner ??= new (await sigstoreSign()).RekorWitness({ rekorBaseURL: url, fetchOnConflict: true, retry: 0, timeout: cfg.timeoutMs });
      try {
        // The POST and, on 409, the GET each have timeoutMs; bound the pair.
        return await withDeadline(inner.testify(content, publicKey), 2 * cfg.timeoutMs + 1000, `rekor ${url}`);
      } catch (e) {
        throw classifySigstoreError(e, `rekor ${url}`);
      }
    },
  };
}

// ---- Rekor v2 ----

async function fetchWithTimeout(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const name = (e as Error)?.name;
    const why =
      name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${timeoutMs} ms` : ((e as { cause?: Error }).cause?.message ?? (e as Error).message);
    throw new RekorError(`rekor ${url}: ${why}`, true, undefined, undefined, { cause: e });
  }
}

async function httpError(res: Response, url: string): Promise<RekorError> {
  let body = '';
  try {
    body = (await res.text()).slice(0, 300);
  } catch {
    /* the status says enough */
  }
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  return new RekorError(`rekor ${url}: HTTP ${res.status} ${body}`.trim(), isRetryableStatus(res.status), res.status, retryAfter);
}

async function getBytes(url: string, timeoutMs: number): Promise<Uint8Array> {
  const res = await fetchWithTimeout(url, { headers: { Accept: '*/*' } }, timeoutMs);
  if (!res.ok) throw await httpError(res, url);
  return new Uint8Array(await res.arrayBuffer());
}

/** The log ID a v2 log puts in its entries: decoded from the config's trust material by the caller. */
export interface V2WitnessOptions {
  readonly logID: Uint8Array;
  /** The anchoring public key, SPKI DER. */
  readonly spki: Uint8Array;
}

export function rekorV2Witness(cfg: AnchorConfig, opts: V2WitnessOptions): Witness {
  const base = cfg.rekor.url;
  const readBase = cfg.rekor.readUrl ?? base;
  return {
    async testify(content: SignatureBundle): Promise<VerificationMaterial> {
      if (content.$case !== 'messageSignature') throw new RekorError('rekor v2: only message signatures are anchored', false);
      const ms = content.messageSignature;
      const digest = ms.messageDigest?.digest;
      if (!digest) throw new RekorError('rekor v2: bundle has no message digest', false);
      const req: CreateEntryRequest = {
        spec: {
          $case: 'hashedRekordRequestV002',
          hashedRekordRequestV002: {
            digest,
            signature: {
              content: ms.signature,
              verifier: {
                verifier: { $case: 'publicKey', publicKey: { rawBytes: Buffer.from(opts.spki) } },
                keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
              },
            },
          },
        },
      };
      const url = `${base}/api/v2/log/entries`;
      const res = await fetchWithTimeout(
        url,
        { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(CreateEntryRequest.toJSON(req)) },
        cfg.timeoutMs,
      );
      if (res.status === 409) {
        const idx = res.headers.get('x-log-index');
        await res.body?.cancel();
        if (!idx || !isCanonicalDecimal(idx)) throw new RekorError(`rekor ${url}: 409 without x-log-index`, true, 409);
        const entry = await existingV2Entry(readBase, Number(idx), { digest, signature: ms.signature, spki: opts.spki }, opts.logID, cfg.timeoutMs);
        return { tlogEntries: [entry] };
      }
      if (!res.ok) throw await httpError(res, url);
      let entry: TransparencyLogEntry;
      try {
        const t = TLE.fromJSON(await res.json());
        if (!t.logId || !t.kindVersion) throw new Error('no logId or kindVersion');
        entry = { ...t, logId: t.logId, kindVersion: t.kindVersion };
      } catch (e) {
        throw new RekorError(`rekor ${url}: unreadable TransparencyLogEntry: ${(e as Error).message}`, true);
      }
      return { tlogEntries: [entry] };
    },
  };
}

interface Expected {
  readonly digest: Uint8Array;
  readonly signature: Uint8Array;
  readonly spki: Uint8Array;
}

/** Whether a rekor v2 hashedrekord leaf (canonical JSON) is exactly our entry. */
export function leafMatchesV2(leaf: Uint8Array, want: Expected): boolean {
  try {
    const e = JSON.parse(Buffer.from(leaf).toString('utf8')) as {
      kind?: string;
      spec?: { hashedRekordV002?: { data?: { digest?: string }; signature?: { content?: string; verifier?: { publicKey?: { rawBytes?: string } } } } };
    };
    const h = e.spec?.hashedRekordV002;
    const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64');
    return (
      e.kind === 'hashedrekord' &&
      b64(h?.data?.digest).equals(Buffer.from(want.digest)) &&
      b64(h?.signature?.content).equals(Buffer.from(want.signature)) &&
      b64(h?.signature?.verifier?.publicKey?.rawBytes).equals(Buffer.from(want.spki))
    );
  } catch {
    return false;
  }
}

/**
 * The receipt of an entry a v2 log already holds at `index`, rebuilt from its public tiles
 * (c2sp.org/tlog-tiles): the published checkpoint, the entry bundle holding the leaf, and the
 * tiles an inclusion proof needs. Everything fetched is checked here (leaf is ours, proof
 * reaches the checkpoint's root); the checkpoint signature is checked with the bundle.
 */
export async function existingV2Entry(readBase: string, index: number, want: Expected, logID: Uint8Array, timeoutMs: number): Promise<TransparencyLogEntry> {
  const cpText = Buffer.from(await getBytes(`${readBase}/checkpoint`, timeoutMs)).toString('utf8');
  let size: number;
  let root: Uint8Array;
  try {
    const cp = parseCheckpoint(parseNote(cpText).text);
    size = cp.treeSize;
    root = cp.rootHash;
  } catch (e) {
    throw new RekorError(`rekor ${readBase}/checkpoint: ${(e as Error).message}`, true);
  }
  if (index >= size) throw new RekorError(`rekor ${readBase}: entry ${index} is not in the published tree of size ${size} yet`, true);
  const bundleIndex = Math.floor(index / TILE_WIDTH);
  const bundlePath = formatTilePath({ level: ENTRIES_LEVEL, index: bundleIndex, width: tileWidthInTree(ENTRIES_LEVEL, bundleIndex, size) });
  const entries = parseEntryBundle(await getBytes(`${readBase}/${bundlePath}`, timeoutMs));
  const leaf = entries[index % TILE_WIDTH];
  if (!leaf || !leafMatchesV2(leaf, want)) {
    throw new RekorError(`rekor ${readBase}: entry ${index} is not our entry (409 pointed at another leaf)`, false);
  }
  const tiles = new Map<string, ExpandedTile>();
  const node = nodeReaderOver((level, i) => tiles.get(`${level}/${i}`) ?? null);
  let hashes: Uint8Array[] | undefined;
  for (let attempt = 0; attempt < 64 && !hashes; attempt++) {
    try {
      hashes = inclusionProof(index, size, node);
    } catch (e) {
      if (!(e instanceof MissingTileError)) throw e;
      const width = tileWidthInTree(e.level, e.tile, size);
      const bytes = await getBytes(`${readBase}/${formatTilePath({ level: e.level, index: e.tile, width })}`, timeoutMs);
      tiles.set(`${e.level}/${e.tile}`, ExpandedTile.fromHashes(e.level, e.tile, bytes));
    }
  }
  if (!hashes || !verifyInclusion(index, size, leafHash(leaf), hashes, root)) {
    throw new RekorError(`rekor ${readBase}: tiles do not prove entry ${index} in the checkpoint of size ${size}`, true);
  }
  return {
    logIndex: String(index),
    logId: { keyId: Buffer.from(logID) },
    kindVersion: { kind: 'hashedrekord', version: '0.0.2' },
    integratedTime: '0',
    inclusionPromise: undefined,
    inclusionProof: {
      logIndex: String(index),
      treeSize: String(size),
      rootHash: Buffer.from(root),
      hashes: hashes.map((h) => Buffer.from(h)),
      checkpoint: { envelope: cpText },
    },
    canonicalizedBody: Buffer.from(leaf),
  };
}
