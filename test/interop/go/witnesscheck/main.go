// witnesscheck drives a c2sp.org/tlog-witness from the outside, as a third-party log would:
// the log key is made and used by golang.org/x/mod/sumdb/note, the tree and its consistency
// proofs come from golang.org/x/mod/sumdb/tlog over synthetic entries, checkpoints are encoded
// by github.com/transparency-dev/formats/log, and every cosignature the witness returns is
// checked with the cosignature verifiers of github.com/transparency-dev/formats/note (0x04
// cosignature/v1 Ed25519 and 0x06 ML-DSA-44).
//
//	witnesscheck keygen ORIGIN
//	    prints {"skey": ..., "vkey": ...}: a fresh log key (x/mod note.GenerateKey)
//	witnesscheck run --url URL --skey SKEY --vkey VKEY --witness-vkey V04 [--witness-vkey V06] [--sizes 1,5,...]
//	    runs the scenario below against a fresh witness and prints one JSON summary line
//
// Exit status 0 only when every step behaved as the spec says.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type step struct {
	Name   string `json:"name"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

type summary struct {
	OK            bool              `json:"ok"`
	Error         string            `json:"error,omitempty"`
	Steps         []step            `json:"steps"`
	Cosigned      []uint64          `json:"cosigned"`
	Verified      map[string]int    `json:"verified"`
	Timestamps    []int64           `json:"timestamps"`
	ModuleVersion map[string]string `json:"moduleVersions"`
}

var out = summary{Verified: map[string]int{}, ModuleVersion: map[string]string{}}

func fail(format string, args ...any) {
	out.OK = false
	out.Error = fmt.Sprintf(format, args...)
	emit()
	os.Exit(1)
}

func emit() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			out.ModuleVersion[d.Path] = d.Version
		}
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// memLog is an in-memory tlog: the stored hashes of x/mod/sumdb/tlog.
type memLog struct {
	hashes []tlog.Hash
	size   int64
}

func (l *memLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	r := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		r[i] = l.hashes[x]
	}
	return r, nil
}

func (l *memLog) growTo(n int64) {
	for l.size < n {
		h, err := tlog.StoredHashes(l.size, []byte(fmt.Sprintf("witnesscheck entry %d", l.size)), l)
		if err != nil {
			fail("StoredHashes: %v", err)
		}
		l.hashes = append(l.hashes, h...)
		l.size++
	}
}

func (l *memLog) root(n int64) tlog.Hash {
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		fail("TreeHash(%d): %v", n, err)
	}
	return h
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: witnesscheck keygen ORIGIN | run --url URL --skey SKEY --witness-vkey V ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "keygen":
		skey, vkey, err := note.GenerateKey(rand.Reader, os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := json.Marshal(map[string]string{"skey": skey, "vkey": vkey})
		fmt.Println(string(b))
	case "run":
		run(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func run(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	url := fs.String("url", "", "witness submission and monitoring prefix")
	skey := fs.String("skey", "", "log signer key (x/mod note)")
	vkey := fs.String("vkey", "", "log verifier key (x/mod note)")
	sizesFlag := fs.String("sizes", "1,5,256,257,1000,4097", "tree sizes to cosign, in order")
	skipProbe := fs.Bool("skip-probe", false, "skip the 409 probe of a fresh witness (omniwitness accepts any old size for a log it has no state for)")
	var wvkeys multiFlag
	fs.Var(&wvkeys, "witness-vkey", "witness verifier key (0x04 or 0x06), repeatable")
	_ = fs.Parse(args)

	signer, err := note.NewSigner(*skey)
	if err != nil {
		fail("log signer: %v", err)
	}
	origin := signer.Name()
	// A second, untrusted key under the same name, and a log the witness does not know.
	strangerSkey, _, _ := note.GenerateKey(rand.Reader, origin)
	stranger, _ := note.NewSigner(strangerSkey)
	otherSkey, _, _ := note.GenerateKey(rand.Reader, "unknown.example/log")
	other, _ := note.NewSigner(otherSkey)

	var witnessVerifiers []note.Verifier
	for _, v := range wvkeys {
		wv, err := fnote.NewVerifierForCosignatureV1(v)
		if err != nil {
			fail("formats NewVerifierForCosignatureV1(%q): %v", v, err)
		}
		witnessVerifiers = append(witnessVerifiers, wv)
	}
	var sizes []int64
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fail("bad size %q", s)
		}
		sizes = append(sizes, n)
	}

	l := &memLog{}
	l.growTo(max(sizes[len(sizes)-1], 10) + 1)
	client := &http.Client{Timeout: 30 * time.Second}

	checkpoint := func(origin string, n int64, h tlog.Hash) []byte {
		return log.Checkpoint{Origin: origin, Size: uint64(n), Hash: h[:]}.Marshal()
	}
	sign := func(text []byte, s note.Signer) []byte {
		msg, err := note.Sign(&note.Note{Text: string(text)}, s)
		if err != nil {
			fail("note.Sign: %v", err)
		}
		return msg
	}
	post := func(name string, old int64, proof tlog.TreeProof, signed []byte) (int, string, string) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "old %d\n", old)
		for _, h := range proof {
			fmt.Fprintf(&b, "%s\n", base64.StdEncoding.EncodeToString(h[:]))
		}
		b.WriteString("\n")
		b.Write(signed)
		resp, err := client.Post(*url+"/add-checkpoint", "text/plain", &b)
		if err != nil {
			fail("%s: POST: %v", name, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		out.Steps = append(out.Steps, step{Name: name, Status: resp.StatusCode, Detail: strings.TrimSpace(string(body[:min(len(body), 120)]))})
		return resp.StatusCode, string(body), resp.Header.Get("Content-Type")
	}
	expect := func(name string, got, want int) {
		if got != want {
			fail("%s: status %d, want %d", name, got, want)
		}
	}
	logVerifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("log verifier: %v", err)
	}
	// verifyCosigned appends the witness's reply to the signed note and opens it with the log
	// key and every witness key: each must have a verified signature.
	verifyCosigned := func(name string, signed []byte, reply string) {
		all := append([]note.Verifier{logVerifier}, witnessVerifiers...)
		n, err := note.Open(append(append([]byte{}, signed...), reply...), note.VerifierList(all...))
		if err != nil {
			fail("%s: note.Open of the cosigned checkpoint: %v\n%s", name, err, reply)
		}
		if len(n.UnverifiedSigs) != 0 {
			fail("%s: %d unverified signatures in the reply", name, len(n.UnverifiedSigs))
		}
		for _, v := range witnessVerifiers {
			found := false
			for _, s := range n.Sigs {
				if s.Name == v.Name() && s.Hash == v.KeyHash() {
					found = true
					ts, err := fnote.CoSigV1Timestamp(s)
					if err != nil || ts.Unix() == 0 {
						fail("%s: cosignature timestamp %v %v", name, ts, err)
					}
					out.Timestamps = append(out.Timestamps, ts.Unix())
					out.Verified[fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())]++
				}
			}
			if !found {
				fail("%s: no verified cosignature from %s+%08x", name, v.Name(), v.KeyHash())
			}
		}
	}

	// A fresh witness: probing with a stale old size gets 409 and the size 0.
	var code int
	var body string
	if !*skipProbe {
		var ctype string
		code, body, ctype = post("probe fresh witness", 7, nil, sign(checkpoint(origin, 10, l.root(10)), signer))
		expect("probe", code, 409)
		if body != "0\n" || ctype != "text/x.tlog.size" {
			fail("probe: body %q content-type %q", body, ctype)
		}
	}

	var old int64
	for _, n := range sizes {
		var proof tlog.TreeProof
		if old > 0 {
			proof, err = tlog.ProveTree(n, old, l)
			if err != nil {
				fail("ProveTree(%d, %d): %v", n, old, err)
			}
		}
		signed := sign(checkpoint(origin, n, l.root(n)), signer)
		name := fmt.Sprintf("cosign %d -> %d", old, n)
		code, body, _ := post(name, old, proof, signed)
		expect(name, code, 200)
		verifyCosigned(name, signed, body)
		out.Cosigned = append(out.Cosigned, uint64(n))
		old = n
	}

	next := old + 100
	l.growTo(next + 1)
	good, _ := tlog.ProveTree(next, old, l)
	signedNext := sign(checkpoint(origin, next, l.root(next)), signer)

	// 409: a client that thinks the witness is behind learns the size.
	code, body, _ = post("stale old", old-1, nil, signedNext)
	expect("stale old", code, 409)
	if body != fmt.Sprintf("%d\n", old) {
		fail("stale old: body %q", body)
	}
	// 422: a consistency proof with one hash flipped.
	bad := append(tlog.TreeProof{}, good...)
	bad[0][0] ^= 1
	code, _, _ = post("bad proof", old, bad, signedNext)
	expect("bad proof", code, 422)
	// 422: the same size with another root (a split view).
	code, _, _ = post("split view", old, nil, sign(checkpoint(origin, old, l.root(old-1)), signer))
	expect("split view", code, 422)
	// 403: only an untrusted key under the log's name.
	code, _, _ = post("untrusted key", old, good, sign(checkpoint(origin, next, l.root(next)), stranger))
	expect("untrusted key", code, 403)
	// 403: the log's own name and key ID, with a signature over another tree.
	forged := sign(checkpoint(origin, next, l.root(next-1)), signer)
	forgedNote, _ := note.Open(forged, note.VerifierList(logVerifier))
	forgedLine := "\u2014 " + forgedNote.Sigs[0].Name + " " + forgedNote.Sigs[0].Base64 + "\n"
	code, _, _ = post("bad signature", old, good, append(checkpoint(origin, next, l.root(next)), []byte("\n"+forgedLine)...))
	expect("bad signature", code, 403)
	// 404: a log the witness does not know.
	code, _, _ = post("unknown origin", 0, nil, sign(checkpoint("unknown.example/log", 1, l.root(1)), other))
	expect("unknown origin", code, 404)
	// 400: old larger than the checkpoint.
	code, _, _ = post("old > size", next+1, nil, signedNext)
	expect("old > size", code, 400)
	// ...and after all that the witness still takes the good request.
	code, body, _ = post(fmt.Sprintf("cosign %d -> %d", old, next), old, good, signedNext)
	expect("final cosign", code, 200)
	verifyCosigned("final cosign", signedNext, body)
	out.Cosigned = append(out.Cosigned, uint64(next))

	// The monitoring endpoint serves it with the log's signature and the witness's.
	hash := sha256.Sum256([]byte(origin))
	resp, err := client.Get(*url + "/" + hex.EncodeToString(hash[:]) + "/checkpoint")
	if err != nil {
		fail("GET checkpoint: %v", err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fail("GET checkpoint: %d", resp.StatusCode)
	}
	all := append([]note.Verifier{logVerifier}, witnessVerifiers...)
	n, err := note.Open(served, note.VerifierList(all...))
	if err != nil || len(n.Sigs) != 1+len(witnessVerifiers) {
		fail("GET checkpoint: open: %v (%d sigs)", err, len(n.Sigs))
	}
	c := &log.Checkpoint{}
	if _, err := c.Unmarshal([]byte(n.Text)); err != nil || c.Size != uint64(next) {
		fail("GET checkpoint: %v size %d", err, c.Size)
	}
	out.Steps = append(out.Steps, step{Name: "GET checkpoint", Status: 200})
	out.OK = true
	emit()
}
