package main

// Where the log's files come from: a directory (the tiles/<tenant> directory of our layout)
// or an http(s) URL prefix serving the same paths (c2sp.org/tlog-tiles).

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// errNotFound is returned by a source for a file that does not exist (os.ErrNotExist, HTTP 404).
var errNotFound = errors.New("not found")

// A source reads the files of one log, by path relative to its prefix ("checkpoint",
// "tile/0/000", "tile/entries/001.p/3"). kind is "checkpoint", "tile", "entries" or "old":
// it only groups the HTTP headers seen.
type source interface {
	get(kind, rel string) ([]byte, error)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// dirSource reads files under a directory.
type dirSource struct{ root string }

func (d dirSource) get(_ string, rel string) ([]byte, error) {
	p := filepath.Join(d.root, filepath.FromSlash(rel))
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", p, errNotFound)
	}
	return b, err
}

// headerSet collects the distinct values of the response headers we report, per kind.
type headerSet struct {
	Requests        int      `json:"requests"`
	ContentType     []string `json:"contentType"`
	CacheControl    []string `json:"cacheControl"`
	ContentEncoding []string `json:"contentEncoding"`
}

func addDistinct(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	list = append(list, v)
	sort.Strings(list)
	return list
}

// httpSource fetches <prefix>/<rel> over HTTP. It sends Accept-Encoding itself, so Go's
// transport does not decompress transparently and we see Content-Encoding as served; gzip is
// decoded whether it was negotiated or not (c2sp.org/tlog-tiles allows unnegotiated gzip).
type httpSource struct {
	prefix     string
	client     *http.Client
	acceptGzip bool
	headers    map[string]*headerSet
	// hook, if set, checks each 200 response's headers and returns a violation or "".
	hook func(kind, rel string, h http.Header) string
	// violations of the hook, in order.
	violations []string
}

func newHTTPSource(prefix string, timeout time.Duration, acceptGzip bool) *httpSource {
	return &httpSource{
		prefix:     strings.TrimSuffix(prefix, "/"),
		client:     &http.Client{Timeout: timeout},
		acceptGzip: acceptGzip,
		headers:    map[string]*headerSet{},
	}
}

func (s *httpSource) get(kind, rel string) ([]byte, error) {
	return s.fetch(kind, s.prefix+"/"+rel, rel)
}

func (s *httpSource) fetch(kind, u, rel string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if s.acceptGzip {
		req.Header.Set("Accept-Encoding", "gzip")
	} else {
		req.Header.Set("Accept-Encoding", "identity")
	}
	req.Header.Set("User-Agent", "tlogcheck (golang.org/x/mod/sumdb interop check)")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s: 404: %w", u, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: status %d: %q", u, resp.StatusCode, body)
	}
	hs := s.headers[kind]
	if hs == nil {
		hs = &headerSet{ContentType: []string{}, CacheControl: []string{}, ContentEncoding: []string{}}
		s.headers[kind] = hs
	}
	hs.Requests++
	hs.ContentType = addDistinct(hs.ContentType, resp.Header.Get("Content-Type"))
	hs.CacheControl = addDistinct(hs.CacheControl, resp.Header.Get("Cache-Control"))
	enc := resp.Header.Get("Content-Encoding")
	hs.ContentEncoding = addDistinct(hs.ContentEncoding, enc)
	if s.hook != nil {
		if v := s.hook(kind, rel, resp.Header); v != "" {
			s.violations = append(s.violations, v)
		}
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("GET %s: bad gzip body: %v", u, err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("GET %s: bad gzip body: %v", u, err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("GET %s: unsupported Content-Encoding %q", u, enc)
	}
}

// readLocation reads a whole file given as a path or an http(s) URL (the -old checkpoints).
func readLocation(loc string, web *httpSource, timeout time.Duration, acceptGzip bool) ([]byte, error) {
	if !isURL(loc) {
		return os.ReadFile(loc)
	}
	if _, err := url.Parse(loc); err != nil {
		return nil, err
	}
	if web == nil {
		web = newHTTPSource("", timeout, acceptGzip)
	}
	return web.fetch("old", loc, loc)
}
