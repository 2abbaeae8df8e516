package main

// -layout: in directory mode, every file under the prefix must be a name the tlog-tiles URL
// space has, as x/mod parses it, and no tile may reach past the checkpoint.

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

type layoutOut struct {
	Files int `json:"files"`
	// Stale partial tiles: allowed (c2sp.org/tlog-tiles: the log MAY delete a partial tile
	// once the full one exists), counted for the curious.
	StalePartials int `json:"stalePartials"`
}

// xmodPath is tilePath backwards: ours "tile/<L|entries>/..." to x/mod's "tile/8/<L|data>/...".
func xmodPath(rel string) string {
	rest, ok := strings.CutPrefix(rel, "tile/")
	if !ok {
		return rel
	}
	if data, ok := strings.CutPrefix(rest, "entries/"); ok {
		rest = "data/" + data
	}
	return fmt.Sprintf("tile/%d/%s", tileHeight, rest)
}

// checkLayout walks root. Every file must be "checkpoint" or a tile path that x/mod's
// ParseTilePath accepts (it insists on the canonical form: 3-digit segments, "x" prefixes,
// no ".p/0" or ".p/256"), and every tile must lie within the tree of size treeSize.
func checkLayout(root string, treeSize int64) (layoutOut, error) {
	var out layoutOut
	implied := map[tlog.Tile]bool{}
	for _, t := range tlog.NewTiles(tileHeight, 0, treeSize) {
		implied[t] = true
		if t.L == 0 {
			implied[tlog.Tile{H: t.H, L: -1, N: t.N, W: t.W}] = true
		}
	}
	var problems []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		out.Files++
		if rel == "checkpoint" {
			return nil
		}
		if !d.Type().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s is not a regular file (%v)", rel, d.Type()))
			return nil
		}
		t, err := tlog.ParseTilePath(xmodPath(rel))
		if err != nil || tilePath(t) != rel {
			problems = append(problems, fmt.Sprintf("%s is not a tlog-tiles path", rel))
			return nil
		}
		// Tile (L, N, W) covers leaves up to (256N + W) * 256^L; data tiles are level 0.
		level := t.L
		if level < 0 {
			level = 0
		}
		end := (t.N*fullWidth + int64(t.W)) << (uint(level) * tileHeight)
		if end > treeSize {
			problems = append(problems, fmt.Sprintf("%s reaches leaf %d, past the tree size %d", rel, end, treeSize))
			return nil
		}
		if !implied[t] {
			// Within the tree but not implied: a partial tile of an earlier tree size.
			out.StalePartials++
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return out, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}
