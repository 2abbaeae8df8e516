// Command tlogcheck is a third-party check of a C2SP tlog-tiles log, written against the Go
// reference packages golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note.
//
// Usage:
//
//	tlogcheck -vkey VKEY [flags] PREFIX
//
// PREFIX is a log's directory (tiles/<tenant>) or an http(s) URL prefix serving
// <prefix>/checkpoint and <prefix>/tile/... . It verifies the checkpoint's Ed25519
// signature with note.Open (other signatures must be ignored), recomputes the root from the
// tiles with tlog.TileHashReader and tlog.TreeHash, checks every entry of every bundle against
// its level-0 hash, builds and checks inclusion proofs, and checks consistency with older
// checkpoints given with -old. It prints one line of JSON and exits 0 if everything holds,
// 1 if a check failed (the JSON then has "ok":false, "stage" and "error"), 2 on bad usage.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

var httpKinds = map[string]bool{"checkpoint": true, "tile": true, "entries": true, "old": true}

// parseWants parses kind=value flags.
func parseWants(list []string, flagName string) (map[string]string, error) {
	out := map[string]string{}
	for _, w := range list {
		kind, val, ok := strings.Cut(w, "=")
		if !ok || !httpKinds[kind] {
			return nil, fmt.Errorf("-%s %q: want kind=value with kind checkpoint, tile, entries or old", flagName, w)
		}
		out[kind] = val
	}
	return out, nil
}

// sameMediaType compares Content-Type values as media types: type and parameters, case-insensitively.
func sameMediaType(got, want string) bool {
	gt, gp, err1 := mime.ParseMediaType(got)
	wt, wp, err2 := mime.ParseMediaType(want)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(strings.TrimSpace(got), strings.TrimSpace(want))
	}
	if gt != wt || len(gp) != len(wp) {
		return false
	}
	for k, v := range wp {
		if !strings.EqualFold(gp[k], v) {
			return false
		}
	}
	return true
}

func directives(v string) map[string]bool {
	out := map[string]bool{}
	for _, d := range strings.Split(v, ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			out[strings.ReplaceAll(d, " ", "")] = true
		}
	}
	return out
}

// hasDirectives reports whether every directive of want appears in the Cache-Control value got.
func hasDirectives(got, want string) bool {
	g := directives(got)
	for d := range directives(want) {
		if !g[d] {
			return false
		}
	}
	return true
}

func timeoutOf(o options) time.Duration { return time.Duration(o.timeoutSec) * time.Second }

func main() {
	var (
		vkey     = flag.String("vkey", "", "the log's Ed25519 verifier key (name+hexID+base64)")
		vkeyFile = flag.String("vkey-file", "", "read the verifier key from the first line of this file (our checkpoints/<tenant>/vkeys)")
		olds     listFlag
		proves   listFlag
		wantCT   listFlag
		wantCC   listFlag
		proofs   = flag.Int("proofs", 512, "inclusion proofs to build and check: every index if the tree has at most this many entries, else a sample; 0 for none")
		seed     = flag.Uint64("seed", 1, "seed of the sample of indexes to prove")
		timeout  = flag.Int("timeout", 30, "HTTP timeout in seconds, per request")
		layout   = flag.Bool("layout", false, "directory PREFIX only: every file must be checkpoint or a canonical tile path (x/mod's ParseTilePath) within the tree; for a log at rest")
		gzipFlag = flag.Bool("gzip", true, "send Accept-Encoding: gzip (gzip bodies are decoded even when not asked for)")
	)
	flag.Var(&olds, "old", "an older checkpoint (file or URL) to check consistency with; repeatable")
	flag.Var(&proves, "prove", "also print x/mod's inclusion proof of this index; repeatable")
	flag.Var(&wantCT, "want-content-type", "kind=type: every HTTP response of kind (checkpoint, tile, entries, old) must have this media type; repeatable")
	flag.Var(&wantCC, "want-cache-control", "kind=directives: every HTTP response of kind must carry these Cache-Control directives; repeatable")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: tlogcheck -vkey VKEY [flags] PREFIX\n\nPREFIX is a log directory (tiles/<tenant>) or an http(s) URL prefix.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	usage := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", a...)
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() != 1 {
		usage("want exactly one PREFIX, got %d arguments", flag.NArg())
	}
	if (*vkey == "") == (*vkeyFile == "") {
		usage("want one of -vkey and -vkey-file")
	}
	if *vkeyFile != "" {
		b, err := os.ReadFile(*vkeyFile)
		if err != nil {
			usage("%v", err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		*vkey = strings.TrimSpace(first)
	}
	o := options{prefix: flag.Arg(0), vkey: *vkey, olds: olds, proofs: *proofs, seed: *seed, timeoutSec: *timeout, acceptGzip: *gzipFlag, layout: *layout}
	for _, p := range proves {
		i, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			usage("-prove %q: %v", p, err)
		}
		o.prove = append(o.prove, i)
	}
	cts, err := parseWants(wantCT, "want-content-type")
	if err != nil {
		usage("%v", err)
	}
	ccs, err := parseWants(wantCC, "want-cache-control")
	if err != nil {
		usage("%v", err)
	}
	if isURL(o.prefix) {
		if o.layout {
			usage("-layout needs a directory PREFIX")
		}
		o.web = newHTTPSource(o.prefix, timeoutOf(o), o.acceptGzip)
		o.web.hook = func(kind, rel string, h http.Header) string {
			var v []string
			if want, ok := cts[kind]; ok && !sameMediaType(h.Get("Content-Type"), want) {
				v = append(v, fmt.Sprintf("%s: Content-Type %q, want %q", rel, h.Get("Content-Type"), want))
			}
			if want, ok := ccs[kind]; ok && !hasDirectives(h.Get("Cache-Control"), want) {
				v = append(v, fmt.Sprintf("%s: Cache-Control %q, want %q", rel, h.Get("Cache-Control"), want))
			}
			return strings.Join(v, "; ")
		}
		o.src = o.web
	} else {
		if len(cts)+len(ccs) > 0 {
			usage("-want-content-type and -want-cache-control need an http(s) PREFIX")
		}
		st, err := os.Stat(o.prefix)
		if err != nil || !st.IsDir() {
			usage("PREFIX %q is neither an http(s) URL nor a directory", o.prefix)
		}
		o.src = dirSource{root: o.prefix}
	}

	s, f := check(o)
	if f != nil {
		s.OK, s.Stage, s.Error = false, f.Stage, f.Err.Error()
	}
	out, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	if f != nil {
		fmt.Fprintf(os.Stderr, "tlogcheck: FAIL (%s): %v\n", f.Stage, f.Err)
		os.Exit(1)
	}
}
