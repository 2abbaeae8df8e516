// tessera-posix writes a tlog-tiles log with a third-party implementation, Tessera's POSIX
// storage driver (github.com/transparency-dev/tessera/storage/posix), so that our client can
// be checked against a log it did not write (issue 7).
//
// Each run opens (or creates) the log in -dir, appends -n entries ("tessera entry <i>" for the
// indexes they get), waits until a checkpoint covering them is published, shuts down and
// prints one line of JSON: {"origin","vkey","treeSize","checkpoint"}. The signing key is kept
// in -key (created on the first run), outside the served directory.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	dir := flag.String("dir", "", "log directory (what a static server would serve)")
	keyFile := flag.String("key", "", "file holding the note signing key; created if missing")
	origin := flag.String("origin", "example.com/tessera-posix", "log origin, also the key name")
	n := flag.Int("n", 0, "number of entries to append")
	flag.Parse()
	if *dir == "" || *keyFile == "" || *n < 0 {
		fail(errors.New("usage: tessera-posix -dir DIR -key FILE -n N [-origin O]"))
	}
	if err := run(*dir, *keyFile, *origin, *n); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "tessera-posix: %v\n", err)
	os.Exit(1)
}

// signerFor loads the signing key, or makes one and stores it; returns the signer and its vkey.
func signerFor(keyFile, origin string) (note.Signer, string, error) {
	data, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		skey, vkey, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(keyFile, []byte(skey+"\n"+vkey+"\n"), 0o600); err != nil {
			return nil, "", err
		}
		data = []byte(skey + "\n" + vkey + "\n")
	} else if err != nil {
		return nil, "", err
	}
	var skey, vkey string
	if _, err := fmt.Sscan(string(data), &skey, &vkey); err != nil {
		return nil, "", fmt.Errorf("key file %s: %v", keyFile, err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}

func run(dir, keyFile, origin string, n int) error {
	ctx := context.Background()
	signer, vkey, err := signerFor(keyFile, origin)
	if err != nil {
		return err
	}
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return fmt.Errorf("posix.New: %v", err)
	}
	batch := uint(n)
	if batch == 0 {
		batch = 1
	}
	// One batch for all the entries; a short checkpoint interval so a second run right after
	// the first can publish at once.
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithBatching(batch, 100*time.Millisecond).
		WithCheckpointInterval(100 * time.Millisecond)
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		return fmt.Errorf("NewAppender: %v", err)
	}
	start, err := reader.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("IntegratedSize: %v", err)
	}
	awaiter := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 50*time.Millisecond)
	futures := make([]tessera.IndexFuture, n)
	for i := range futures {
		futures[i] = appender.Add(ctx, tessera.NewEntry([]byte(fmt.Sprintf("tessera entry %d", start+uint64(i)))))
	}
	for i, f := range futures {
		idx, _, err := awaiter.Await(ctx, f)
		if err != nil {
			return fmt.Errorf("entry %d: %v", i, err)
		}
		if idx.Index != start+uint64(i) {
			return fmt.Errorf("entry %d got index %d, want %d", i, idx.Index, start+uint64(i))
		}
	}
	if err := shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %v", err)
	}
	cp, err := reader.ReadCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("ReadCheckpoint: %v", err)
	}
	size, err := reader.IntegratedSize(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"origin":     origin,
		"vkey":       vkey,
		"start":      start,
		"treeSize":   size,
		"checkpoint": string(cp),
	})
}
