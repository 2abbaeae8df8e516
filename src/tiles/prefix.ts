/**
 * A partial tile or bundle as the prefix of a wider one. Pure: no I/O.
 *
 * c2sp.org/tlog-tiles: the partial tile of width W at (L, N) holds the first W hashes of the
 * tile, and every wider partial and the full tile start with the same W hashes (likewise the
 * entries of bundles). So a log may delete a partial once the full tile exists and a client
 * falls back to the full tile; this engine also collects superseded partials earlier and
 * serves them from the narrowest wider file it keeps (tile-store/partials.ts).
 */
import { parseCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode } from '../errors.js';
import { HASH_SIZE } from '../merkle/hash.js';
import { entryBundlePrefix } from './bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH } from './layout.js';

/** The width a partial tile's file name `<W>` gives (c2sp.org/tlog-tiles: 1 to 255), or null. */
export function parsePartialWidth(name: string): number | null {
  const w = parseCanonicalDecimal(name, TILE_WIDTH - 1);
  return w === null || w === 0 ? null : w;
}

/**
 * The widths to derive a partial of `width` from, given the names in its `<N>.p` directory:
 * the wider partials, narrowest first, then TILE_WIDTH (the full tile).
 */
export function widerWidths(names: readonly string[], width: number): number[] {
  const out: number[] = [];
  for (const n of names) {
    const w = parsePartialWidth(n);
    if (w !== null && w > width) out.push(w);
  }
  return [...out.sort((a, b) => a - b), TILE_WIDTH];
}

/**
 * The first `width` hashes (entries, at ENTRIES_LEVEL) of `data`, a tile (bundle) of width
 * `wider`. Throws a corrupt_state error naming `where` when `data` is not such a file.
 */
export function prefixOf(where: string, level: number, data: Uint8Array, wider: number, width: number): Uint8Array {
  if (level !== ENTRIES_LEVEL) {
    if (data.length !== wider * HASH_SIZE) throw new TlogError(ErrorCode.corrupt, `tile ${where} is ${data.length} bytes, want ${wider * HASH_SIZE}`);
    return data.subarray(0, width * HASH_SIZE);
  }
  try {
    return entryBundlePrefix(data, width);
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `bundle ${where}: ${(e as Error).message}`);
  }
}
