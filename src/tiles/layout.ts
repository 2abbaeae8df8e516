/**
 * c2sp.org/tlog-tiles coordinates and paths. Pure: no I/O.
 *
 * A tile (L, N) at level L holds, for i < 256, MTH(D[(256N+i)·256^L : (256N+i+1)·256^L]).
 * Level 0 holds leaf hashes; level L+1 holds the roots of full level-L tiles.
 */
import { parseCanonicalDecimal } from '../decimal.js';
import { HASH_SIZE } from '../merkle/hash.js';

export const TILE_HEIGHT = 8;
/** c2sp.org/tlog-tiles: a full tile has 2^TILE_HEIGHT = 256 hashes (8192 bytes). */
export const TILE_WIDTH = 256;
export const FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE;
/** c2sp.org/tlog-tiles: L is 0..63. */
export const MAX_LEVEL = 63;
/** The "level" used for entry bundles in paths and tables: they sit beside level 0. */
export const ENTRIES_LEVEL = -1;

export interface TileCoord {
  /** 0..63, or ENTRIES_LEVEL for an entry bundle. */
  readonly level: number;
  readonly index: number;
  /** 1..256; 256 means a full tile. */
  readonly width: number;
}

/**
 * c2sp.org/tlog-tiles: N is split into zero-padded 3-digit decimal segments, every one but
 * the last prefixed with "x": 1234067 -> x001/x234/067, 1000 -> x001/000, 5 -> 005.
 */
export function formatIndexPath(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`formatIndexPath: bad index ${n}`);
  let s = String(n % 1000).padStart(3, '0');
  n = Math.floor(n / 1000);
  while (n > 0) {
    s = `x${String(n % 1000).padStart(3, '0')}/${s}`;
    n = Math.floor(n / 1000);
  }
  return s;
}

/** The number an N path (formatIndexPath) names, or null when it is not canonical. */
export function parseIndexPath(p: string): number | null {
  const c = parseTilePath(`tile/0/${p}`);
  return c && c.width === TILE_WIDTH ? c.index : null;
}

/** `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, relative to the log prefix. */
export function formatTilePath(t: TileCoord): string {
  const levelPart = t.level === ENTRIES_LEVEL ? 'entries' : String(t.level);
  if (!(t.level === ENTRIES_LEVEL || (Number.isInteger(t.level) && t.level >= 0 && t.level <= MAX_LEVEL))) {
    throw new Error(`formatTilePath: bad level ${t.level}`);
  }
  if (!(Number.isInteger(t.width) && t.width >= 1 && t.width <= TILE_WIDTH)) {
    throw new Error(`formatTilePath: bad width ${t.width}`);
  }
  const base = `tile/${levelPart}/${formatIndexPath(t.index)}`;
  return t.width === TILE_WIDTH ? base : `${base}.p/${t.width}`;
}

const SEGMENT_LAST = /^[0-9]{3}$/;
const SEGMENT_X = /^x[0-9]{3}$/;

/**
 * Parses a tile path back to its coordinate, accepting only the canonical form (no leading
 * zeros in L or W, 3-digit segments, no superfluous leading "x000" segment). Returns null for
 * anything else, so a server can answer 404 without touching the disk.
 */
export function parseTilePath(path: string): TileCoord | null {
  const parts = path.split('/');
  if (parts.length < 3 || parts[0] !== 'tile') return null;
  let level: number;
  if (parts[1] === 'entries') level = ENTRIES_LEVEL;
  else {
    const l = parseCanonicalDecimal(parts[1]!, MAX_LEVEL);
    if (l === null) return null;
    level = l;
  }
  let rest = parts.slice(2);
  let width = TILE_WIDTH;
  const last = rest[rest.length - 1]!;
  if (rest.length >= 2 && rest[rest.length - 2]!.endsWith('.p')) {
    // <N>.p/<W>
    const w = parseCanonicalDecimal(last, TILE_WIDTH - 1);
    if (w === null || w < 1) return null;
    width = w;
    rest = rest.slice(0, -1);
    rest[rest.length - 1] = rest[rest.length - 1]!.slice(0, -2);
  }
  let index = 0;
  for (let i = 0; i < rest.length; i++) {
    const seg = rest[i]!;
    const isLast = i === rest.length - 1;
    if (isLast ? !SEGMENT_LAST.test(seg) : !SEGMENT_X.test(seg)) return null;
    index = index * 1000 + Number(isLast ? seg : seg.slice(1));
  }
  if (!Number.isSafeInteger(index)) return null;
  // Canonical: the first segment of a multi-segment path is never x000.
  if (rest.length > 1 && rest[0] === 'x000') return null;
  return { level, index, width };
}

/** Number of hashes at `level` for a tree of `size` leaves: floor(size / 256^level). */
export function hashesAtLevel(level: number, size: number): number {
  return Math.floor(size / TILE_WIDTH ** level);
}

/** c2sp.org/tlog-tiles: the partial width at a level is floor(s / 256^L) mod 256 (0: none). */
export function partialWidth(level: number, size: number): number {
  return hashesAtLevel(level, size) % TILE_WIDTH;
}

/**
 * Every tile a tree of `size` implies at `level` with its width in that tree: full tiles
 * 0..full-1, then the partial one if its width is not 0. Entry bundles follow level 0.
 */
export function tileWidthInTree(level: number, index: number, size: number): number {
  const count = hashesAtLevel(level === ENTRIES_LEVEL ? 0 : level, size);
  const w = count - index * TILE_WIDTH;
  if (w <= 0) return 0;
  return Math.min(w, TILE_WIDTH);
}

/** The highest level with at least one hash for a tree of `size` (-1 for the empty tree). */
export function topLevel(size: number): number {
  if (size === 0) return -1;
  let level = 0;
  while (hashesAtLevel(level + 1, size) > 0) level++;
  return level;
}

/** The tiles (full and partial, with entry bundles) whose contents changed going from oldSize to newSize. */
export function changedTiles(oldSize: number, newSize: number): TileCoord[] {
  const out: TileCoord[] = [];
  if (newSize <= oldSize) return out;
  for (let level = ENTRIES_LEVEL; level <= topLevel(newSize); level++) {
    const l = level === ENTRIES_LEVEL ? 0 : level;
    const oldCount = hashesAtLevel(l, oldSize);
    const newCount = hashesAtLevel(l, newSize);
    if (newCount === oldCount) continue;
    const first = Math.floor(oldCount / TILE_WIDTH);
    const last = Math.floor((newCount - 1) / TILE_WIDTH);
    for (let n = first; n <= last; n++) {
      out.push({ level, index: n, width: tileWidthInTree(level, n, newSize) });
    }
  }
  return out;
}

/**
 * The partial tiles and the partial entry bundle a tree of `size` implies (c2sp.org/tlog-tiles:
 * width floor(s / 256^L) mod 256 at level L, none where that is 0), bundle first.
 */
export function partialTiles(size: number): TileCoord[] {
  const out: TileCoord[] = [];
  if (size % TILE_WIDTH > 0) out.push({ level: ENTRIES_LEVEL, index: Math.floor(size / TILE_WIDTH), width: size % TILE_WIDTH });
  for (let level = 0; hashesAtLevel(level, size) > 0; level++) {
    const w = partialWidth(level, size);
    if (w > 0) out.push({ level, index: Math.floor(hashesAtLevel(level, size) / TILE_WIDTH), width: w });
  }
  return out;
}

/** Bytes of every hash the tiles of a tree of `size` hold, at every level, full tiles and partial. */
export function treeHashBytes(size: number): number {
  let n = 0;
  for (let level = 0; hashesAtLevel(level, size) > 0; level++) n += hashesAtLevel(level, size);
  return n * HASH_SIZE;
}
