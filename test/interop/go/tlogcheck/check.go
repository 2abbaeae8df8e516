package main

// The checks, in order: checkpoint, tree, layout, tiles, entries, proofs, consistency, http-headers.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// checkpoint is a parsed c2sp.org/tlog-checkpoint body.
type checkpoint struct {
	origin     string
	size       int64
	root       tlog.Hash
	extensions []string
}

var canonicalDecimal = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// parseCheckpoint parses the note text of a checkpoint: origin, size and root lines, then
// optional non-empty extension lines (c2sp.org/tlog-checkpoint). tlog.ParseTree wants the old
// "go.sum database tree" header, so it cannot be used here.
func parseCheckpoint(text string) (checkpoint, error) {
	var c checkpoint
	body, ok := strings.CutSuffix(text, "\n")
	if !ok {
		return c, errors.New("checkpoint text does not end in a newline")
	}
	lines := strings.Split(body, "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("checkpoint has %d lines, want origin, size and root", len(lines))
	}
	c.origin = lines[0]
	if c.origin == "" {
		return c, errors.New("checkpoint origin line is empty")
	}
	if !canonicalDecimal.MatchString(lines[1]) {
		return c, fmt.Errorf("checkpoint size %q is not a canonical decimal", lines[1])
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return c, fmt.Errorf("checkpoint size %q: %v", lines[1], err)
	}
	c.size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return c, fmt.Errorf("checkpoint root %q is not the canonical base64 of 32 bytes", lines[2])
	}
	copy(c.root[:], root)
	for _, e := range lines[3:] {
		if e == "" {
			return c, errors.New("checkpoint has an empty extension line")
		}
	}
	c.extensions = lines[3:]
	return c, nil
}

type sigInfo struct {
	Name     string `json:"name"`
	KeyID    string `json:"keyID"`
	Bytes    int    `json:"bytes"`
	Verified bool   `json:"verified"`
}

func sigInfoOf(s note.Signature, verified bool) sigInfo {
	n := 0
	if b, err := base64.StdEncoding.DecodeString(s.Base64); err == nil {
		n = len(b)
	}
	return sigInfo{Name: s.Name, KeyID: fmt.Sprintf("%08x", s.Hash), Bytes: n, Verified: verified}
}

// openCheckpoint verifies a signed checkpoint with x/mod's note.Open and parses its text.
// Signatures by other keys, including our own ML-DSA-44 line under the same name, must be
// ignored by note.Open (c2sp.org/signed-note: verifiers ignore unknown name+ID pairs).
func openCheckpoint(msg []byte, verifiers note.Verifiers, keyName string) (checkpoint, []sigInfo, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return checkpoint{}, nil, fmt.Errorf("note.Open: %v", err)
	}
	var sigs []sigInfo
	for _, s := range n.Sigs {
		sigs = append(sigs, sigInfoOf(s, true))
	}
	for _, s := range n.UnverifiedSigs {
		sigs = append(sigs, sigInfoOf(s, false))
	}
	c, err := parseCheckpoint(n.Text)
	if err != nil {
		return c, sigs, err
	}
	// c2sp.org/tlog-checkpoint: the log's key name SHOULD be the origin; ours always is.
	if c.origin != keyName {
		return c, sigs, fmt.Errorf("checkpoint origin %q is not the key name %q", c.origin, keyName)
	}
	return c, sigs, nil
}

type proofOut struct {
	Index int64    `json:"index"`
	Proof []string `json:"proof"`
}

type consistencyOut struct {
	Location string   `json:"location"`
	OldSize  int64    `json:"oldSize"`
	OldRoot  string   `json:"oldRoot"`
	Proof    []string `json:"proof"`
}

type summary struct {
	OK               bool                  `json:"ok"`
	Prefix           string                `json:"prefix"`
	Origin           string                `json:"origin"`
	TreeSize         int64                 `json:"treeSize"`
	RootHash         string                `json:"rootHash"`
	Extensions       []string              `json:"extensions"`
	Signatures       []sigInfo             `json:"signatures"`
	Entries          int64                 `json:"entries"`
	Bundles          int64                 `json:"bundles"`
	Tiles            int                   `json:"tiles"`
	Fetches          int                   `json:"fetches"`
	PartialFallbacks int                   `json:"partialFallbacks"`
	RecordProofs     int                   `json:"recordProofs"`
	Inclusion        []proofOut            `json:"inclusion"`
	Consistency      []consistencyOut      `json:"consistency"`
	Layout           *layoutOut            `json:"layout,omitempty"`
	HTTP             map[string]*headerSet `json:"http,omitempty"`
	Stage            string                `json:"stage,omitempty"`
	Error            string                `json:"error,omitempty"`
}

// failure is a check that did not pass, with the stage it failed in.
type failure struct {
	Stage string
	Err   error
}

func fail(stage string, format string, a ...any) *failure {
	return &failure{Stage: stage, Err: fmt.Errorf(format, a...)}
}

type options struct {
	prefix     string
	vkey       string
	olds       []string
	proofs     int
	seed       uint64
	prove      []int64
	web        *httpSource
	src        source
	timeoutSec int
	acceptGzip bool
	// layout, in directory mode: check every file name under the prefix (checkLayout).
	layout bool
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func b64s(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

func check(o options) (*summary, *failure) {
	s := &summary{Prefix: o.prefix, Extensions: []string{}, Inclusion: []proofOut{}, Consistency: []consistencyOut{}}
	if o.web != nil {
		s.HTTP = o.web.headers
	}

	// 1. The checkpoint, verified by x/mod's note package with the Ed25519 key only.
	v, err := note.NewVerifier(o.vkey)
	if err != nil {
		return s, fail("checkpoint", "note.NewVerifier(%q): %v", o.vkey, err)
	}
	verifiers := note.VerifierList(v)
	msg, err := o.src.get("checkpoint", "checkpoint")
	if err != nil {
		return s, fail("checkpoint", "read checkpoint: %v", err)
	}
	c, sigs, err := openCheckpoint(msg, verifiers, v.Name())
	s.Signatures = sigs
	if err != nil {
		return s, fail("checkpoint", "%v", err)
	}
	s.Origin, s.TreeSize, s.RootHash, s.Extensions = c.origin, c.size, b64(c.root), c.extensions
	size := c.size
	tree := tlog.Tree{N: size, Hash: c.root}

	// 2. The root, recomputed from the tiles through x/mod's authenticating hash reader.
	tr := newTileReader(o.src)
	hr := tlog.TileHashReader(tree, tr)
	th, err := tlog.TreeHash(size, hr)
	if err != nil {
		return s, fail("tree", "tlog.TreeHash(%d): %v", size, err)
	}
	if th != c.root {
		return s, fail("tree", "tiles hash to %s at size %d, checkpoint says %s", b64(th), size, b64(c.root))
	}

	// 2b. With -layout, every file of the directory is a tlog-tiles name within the tree.
	if o.layout {
		d, ok := o.src.(dirSource)
		if !ok {
			return s, fail("layout", "-layout needs a directory PREFIX")
		}
		lo, err := checkLayout(d.root, size)
		s.Layout = &lo
		if err != nil {
			return s, fail("layout", "%v", err)
		}
	}

	// 3. Every tile the checkpoint implies (x/mod's NewTiles, height 8) is readable, has the
	//    right width, and is authenticated up to the root.
	implied := tlog.NewTiles(tileHeight, 0, size)
	for _, t := range implied {
		data, err := tlog.ReadTileData(t, hr)
		if err != nil {
			return s, fail("tiles", "tile %s: %v", tilePath(t), err)
		}
		raw, ok := tr.cache[t]
		if !ok || string(raw) != string(data) {
			return s, fail("tiles", "tile %s was not read as itself (x/mod and our layout disagree on its coordinates)", tilePath(t))
		}
		if !tr.authenticated[t] {
			return s, fail("tiles", "tile %s was read but never authenticated", tilePath(t))
		}
	}
	s.Tiles = len(implied)

	// 4. Every entry: its record hash is the stored level-0 hash. Remember the record hashes
	//    of the indexes we will prove.
	sample := sampleIndexes(size, o.proofs, o.seed)
	for _, i := range o.prove {
		if i < 0 || i >= size {
			return s, fail("proofs", "-prove %d is not in a tree of size %d", i, size)
		}
		sample[i] = true
	}
	recordHash := map[int64]tlog.Hash{}
	for n := int64(0); n*fullWidth < size; n++ {
		entries, err := tr.readBundle(n, size)
		if err != nil {
			return s, fail("entries", "%v", err)
		}
		idx := make([]int64, len(entries))
		for k := range entries {
			idx[k] = tlog.StoredHashIndex(0, n*fullWidth+int64(k))
		}
		stored, err := hr.ReadHashes(idx)
		if err != nil {
			return s, fail("entries", "read leaf hashes of bundle %d: %v", n, err)
		}
		for k, e := range entries {
			i := n*fullWidth + int64(k)
			h := tlog.RecordHash(e)
			if h != stored[k] {
				return s, fail("entries", "entry %d: record hash %s, level-0 tile holds %s", i, b64(h), b64(stored[k]))
			}
			if sample[i] {
				recordHash[i] = h
			}
		}
		s.Bundles++
		s.Entries += int64(len(entries))
	}

	// 5. Inclusion proofs built by x/mod from our tiles, checked against the checkpoint.
	order := make([]int64, 0, len(sample))
	for i := range sample {
		order = append(order, i)
	}
	sort.Slice(order, func(a, b int) bool { return order[a] < order[b] })
	wanted := map[int64]bool{}
	for _, i := range o.prove {
		wanted[i] = true
	}
	for _, i := range order {
		p, err := tlog.ProveRecord(size, i, hr)
		if err != nil {
			return s, fail("proofs", "tlog.ProveRecord(%d, %d): %v", size, i, err)
		}
		if err := tlog.CheckRecord(p, size, c.root, i, recordHash[i]); err != nil {
			return s, fail("proofs", "tlog.CheckRecord(%d, %d): %v", size, i, err)
		}
		s.RecordProofs++
		if wanted[i] {
			s.Inclusion = append(s.Inclusion, proofOut{Index: i, Proof: b64s(p)})
		}
	}

	// 6. Consistency with older checkpoints.
	for _, loc := range o.olds {
		old, err := readLocation(loc, o.web, timeoutOf(o), o.acceptGzip)
		if err != nil {
			return s, fail("consistency", "read old checkpoint %s: %v", loc, err)
		}
		oc, _, err := openCheckpoint(old, verifiers, v.Name())
		if err != nil {
			return s, fail("consistency", "old checkpoint %s: %v", loc, err)
		}
		out := consistencyOut{Location: loc, OldSize: oc.size, OldRoot: b64(oc.root), Proof: []string{}}
		if oc.origin != c.origin {
			return s, fail("consistency", "old checkpoint %s has origin %q, want %q", loc, oc.origin, c.origin)
		}
		if oc.size > size {
			return s, fail("consistency", "old checkpoint %s has size %d, larger than %d", loc, oc.size, size)
		}
		if oc.size == 0 {
			// RFC 6962: the empty tree's hash is SHA-256 of nothing; every tree extends it.
			if th, _ := tlog.TreeHash(0, hr); oc.root != th {
				return s, fail("consistency", "old checkpoint %s of size 0 has root %s, want %s", loc, b64(oc.root), b64(th))
			}
			s.Consistency = append(s.Consistency, out)
			continue
		}
		// x/mod's RFC 6962 consistency proof must check...
		p, err := tlog.ProveTree(size, oc.size, hr)
		if err != nil {
			return s, fail("consistency", "tlog.ProveTree(%d, %d): %v", size, oc.size, err)
		}
		if err := tlog.CheckTree(p, size, c.root, oc.size, oc.root); err != nil {
			return s, fail("consistency", "tlog.CheckTree(%d -> %d): %v", oc.size, size, err)
		}
		// ...and the new tree's tiles must reproduce the old root as well.
		oth, err := tlog.TreeHash(oc.size, hr)
		if err != nil {
			return s, fail("consistency", "tlog.TreeHash(%d) from the new tiles: %v", oc.size, err)
		}
		if oth != oc.root {
			return s, fail("consistency", "new tiles hash to %s at size %d, old checkpoint %s says %s", b64(oth), oc.size, loc, b64(oc.root))
		}
		out.Proof = b64s(p)
		s.Consistency = append(s.Consistency, out)
	}

	s.Fetches, s.PartialFallbacks = tr.fetches, tr.fallbacks

	// 7. The HTTP headers asked for with -want-content-type / -want-cache-control.
	if o.web != nil && len(o.web.violations) > 0 {
		return s, fail("http-headers", "%s", strings.Join(o.web.violations, "; "))
	}
	s.OK = true
	return s, nil
}

// sampleIndexes picks the indexes to prove: all of them if there are at most max, otherwise
// the edges (first, last, around every tile boundary up to 257) plus pseudo-random ones.
func sampleIndexes(size int64, max int, seed uint64) map[int64]bool {
	out := map[int64]bool{}
	if size == 0 || max <= 0 {
		return out
	}
	if size <= int64(max) {
		for i := int64(0); i < size; i++ {
			out[i] = true
		}
		return out
	}
	for _, i := range []int64{0, 1, 254, 255, 256, 257, 65535, 65536, size / 2, size - 257, size - 256, size - 2, size - 1} {
		if i >= 0 && i < size {
			out[i] = true
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x746c6f67))
	for len(out) < max {
		out[rng.Int64N(size)] = true
	}
	return out
}
