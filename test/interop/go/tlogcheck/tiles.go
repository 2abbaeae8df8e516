package main

// A tlog.TileReader over the c2sp.org/tlog-tiles layout, and the entry bundles.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is fixed by c2sp.org/tlog-tiles: 2^8 = 256 hashes per full tile.
const tileHeight = 8

const fullWidth = 1 << tileHeight

// tilePath maps x/mod's tile coordinates to ours. x/mod's Tile.Path is
// "tile/<H>/<L>/<N>[.p/<W>]", with "data" for level -1; c2sp.org/tlog-tiles drops the height
// and calls the data tiles "entries": "tile/<L>/<N>[.p/<W>]", "tile/entries/<N>[.p/<W>]".
// The N and W parts are x/mod's own formatting, on purpose: if our encoding of N ever
// differed from x/mod's, the files would not be found.
func tilePath(t tlog.Tile) string {
	if t.H != tileHeight {
		panic(fmt.Sprintf("tilePath: height %d, want %d", t.H, tileHeight))
	}
	rest, ok := strings.CutPrefix(t.Path(), fmt.Sprintf("tile/%d/", t.H))
	if !ok {
		panic("tilePath: unexpected x/mod tile path " + t.Path())
	}
	if t.L == -1 {
		data, ok := strings.CutPrefix(rest, "data/")
		if !ok {
			panic("tilePath: unexpected x/mod data tile path " + t.Path())
		}
		rest = "entries/" + data
	}
	return "tile/" + rest
}

// tileReader implements tlog.TileReader. It keeps the bytes it fetched in memory so the
// repeated ReadHashes calls of a full walk do not refetch; tlog.TileHashReader still
// re-authenticates every tile against the tree hash on every call.
type tileReader struct {
	src   source
	cache map[tlog.Tile][]byte
	// authenticated holds the tiles tlog.TileHashReader confirmed (SaveTiles).
	authenticated map[tlog.Tile]bool
	// fetches counts files read; fallbacks counts partial tiles read from the full tile.
	fetches, fallbacks int
}

func newTileReader(src source) *tileReader {
	return &tileReader{src: src, cache: map[tlog.Tile][]byte{}, authenticated: map[tlog.Tile]bool{}}
}

func (r *tileReader) Height() int { return tileHeight }

// fetchTile reads a hash tile or a bundle. For a partial tile that is gone it falls back to
// the full tile (c2sp.org/tlog-tiles: the log MAY delete a partial tile once the full one
// exists, and clients MAY fall back); the caller truncates.
func (r *tileReader) fetchTile(t tlog.Tile) (data []byte, fromFull bool, err error) {
	kind := "tile"
	if t.L == -1 {
		kind = "entries"
	}
	r.fetches++
	data, err = r.src.get(kind, tilePath(t))
	if err == nil || !errors.Is(err, errNotFound) || t.W == fullWidth {
		return data, false, err
	}
	full := t
	full.W = fullWidth
	r.fetches++
	data, err2 := r.src.get(kind, tilePath(full))
	if err2 != nil {
		// Report the partial tile: it is the one a checkpoint implies.
		return nil, false, err
	}
	r.fallbacks++
	return data, true, nil
}

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.L < 0 {
			return nil, fmt.Errorf("tile reader asked for data tile %s", tilePath(t))
		}
		if b, ok := r.cache[t]; ok {
			out[i] = b
			continue
		}
		data, fromFull, err := r.fetchTile(t)
		if err != nil {
			return nil, fmt.Errorf("read tile %s: %w", tilePath(t), err)
		}
		want := t.W * tlog.HashSize
		if fromFull {
			if len(data) != fullWidth*tlog.HashSize {
				return nil, fmt.Errorf("tile %s (read for the missing partial %s) is %d bytes, want %d",
					tilePath(tlog.Tile{H: t.H, L: t.L, N: t.N, W: fullWidth}), tilePath(t), len(data), fullWidth*tlog.HashSize)
			}
			data = data[:want]
		} else if len(data) != want {
			return nil, fmt.Errorf("tile %s is %d bytes, want %d (%d hashes)", tilePath(t), len(data), want, t.W)
		}
		r.cache[t] = data
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, _ [][]byte) {
	for _, t := range tiles {
		r.authenticated[t] = true
	}
}

// readBundle reads entry bundle n of a tree of size treeSize and splits it into its entries:
// (u16 big-endian length || entry)*, exactly as many as the tree implies.
func (r *tileReader) readBundle(n, treeSize int64) ([][]byte, error) {
	w := treeSize - n*fullWidth
	if w > fullWidth {
		w = fullWidth
	}
	if w <= 0 {
		return nil, fmt.Errorf("bundle %d is not in a tree of size %d", n, treeSize)
	}
	t := tlog.Tile{H: tileHeight, L: -1, N: n, W: int(w)}
	data, fromFull, err := r.fetchTile(t)
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", tilePath(t), err)
	}
	entries, rest, err := splitBundle(data, int(w))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %v", tilePath(t), err)
	}
	if len(rest) > 0 && !fromFull {
		return nil, fmt.Errorf("bundle %s: %d trailing bytes after its %d entries", tilePath(t), len(rest), w)
	}
	return entries, nil
}

// splitBundle takes want entries off the front of a bundle and returns them and what is left.
func splitBundle(data []byte, want int) (entries [][]byte, rest []byte, err error) {
	entries = make([][]byte, 0, want)
	off := 0
	for len(entries) < want {
		if off+2 > len(data) {
			return nil, nil, fmt.Errorf("holds %d entries, want %d", len(entries), want)
		}
		n := int(binary.BigEndian.Uint16(data[off:]))
		if off+2+n > len(data) {
			return nil, nil, fmt.Errorf("entry %d (%d bytes at offset %d) runs past the end (%d bytes)", len(entries), n, off, len(data))
		}
		entries = append(entries, data[off+2:off+2+n])
		off += 2 + n
	}
	return entries, data[off:], nil
}
