// tessera-tuned is bench/peer's Tessera log server with its batching and checkpoint interval as
// flags: a tlog-tiles log on Tessera's POSIX storage driver (github.com/transparency-dev/tessera,
// the version go.mod pins), written against the library's public API. It answers what Tessera's
// conformance server answers, so the same load drives both:
//
//	POST /add            body = one entry; answer = its index, decimal (duplicates: the first index)
//	GET  /checkpoint     the published checkpoint
//	GET  /tile/...       hash tiles and entry bundles, from the storage directory
//
// The stock conformance server (cmd/conformance/posix, built from this module's `tool` line)
// fixes batching at 256 entries / 1 s and checkpoints at 1 s; bench/peer runs this one with
// -batch_size 4096 -batch_age 10ms -checkpoint_interval 100ms as "tuned".
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	dir := flag.String("storage_dir", "", "directory of the log (what a static server would serve)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on; the chosen one is printed")
	keyFile := flag.String("private_key", "", "file holding the note signing key (PRIVATE+KEY+...)")
	batchSize := flag.Uint("batch_size", tessera.DefaultBatchMaxSize, "entries per sequencing batch at most")
	batchAge := flag.Duration("batch_age", tessera.DefaultBatchMaxAge, "longest an entry waits for its batch to fill")
	checkpointEvery := flag.Duration("checkpoint_interval", time.Second, "how often a new checkpoint is published (Tessera's POSIX minimum is 100ms)")
	republishEvery := flag.Duration("republish_interval", time.Minute, "how often an unchanged checkpoint is published again")
	flag.Parse()
	if *dir == "" || *keyFile == "" {
		log.Fatal("usage: tessera-tuned -storage_dir DIR -private_key FILE [-listen ADDR] [-batch_size N] [-batch_age D] [-checkpoint_interval D]")
	}

	skey, err := os.ReadFile(*keyFile)
	if err != nil {
		log.Fatalf("reading the key: %v", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		log.Fatalf("the key: %v", err)
	}

	ctx := context.Background()
	driver, err := posix.New(ctx, posix.Config{Path: *dir})
	if err != nil {
		log.Fatalf("posix storage: %v", err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithBatching(*batchSize, *batchAge).
		WithCheckpointInterval(*checkpointEvery).
		WithCheckpointRepublishInterval(*republishEvery).
		// In-memory dedup as in the conformance server, so duplicates answer the first index.
		WithAntispam(tessera.DefaultAntispamInMemorySize, nil)
	appender, shutdown, _, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		log.Fatalf("appender: %v", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		entry, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		idx, err := appender.Add(r.Context(), tessera.NewEntry(entry))()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d", idx.Index)
	})
	files := http.FileServer(http.Dir(*dir))
	withCache := func(value string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", value)
			files.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /checkpoint", withCache("no-cache"))
	mux.Handle("GET /tile/", withCache("max-age=31536000, immutable"))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	// The conformance server speaks HTTP/1.1 and cleartext HTTP/2 on one port; so does this one.
	srv := &http.Server{Handler: h2c.NewHandler(mux, &http2.Server{}), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(os.Stderr, "tessera-tuned listening on http://%s (batch %d / %v, checkpoint every %v)\n", ln.Addr(), *batchSize, *batchAge, *checkpointEvery)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("serve: %v", err)
	}
	if err := shutdown(ctx); err != nil {
		log.Fatalf("shutdown: %v", err)
	}
}
