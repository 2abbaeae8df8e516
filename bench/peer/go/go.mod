// bench/peer's Tessera programs, pinned by this go.mod and go.sum (modules from the Go module proxy):
//   - the stock conformance server: go build -o DIR/tessera-posix github.com/transparency-dev/tessera/cmd/conformance/posix
//   - tessera-tuned (main.go here: the same routes, batching and checkpoint interval as flags): go build -o DIR/tessera-tuned .
//   - Tessera's load generator, which drives any server with its /add route (ours too):
//     go build -o DIR/hammer github.com/transparency-dev/tessera/internal/hammer
// bench/peer builds the first two into its cache directory.
module tlog-worm/bench/peer

go 1.24.0

tool (
	github.com/transparency-dev/tessera/cmd/conformance/posix
	github.com/transparency-dev/tessera/internal/hammer
)

require (
	github.com/transparency-dev/tessera v1.0.4
	golang.org/x/mod v0.33.0
	golang.org/x/net v0.50.0
)

require (
	github.com/RobinUS2/golang-moving-average v1.0.0 // indirect
	github.com/cenkalti/backoff/v5 v5.0.3 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgraph-io/badger/v4 v4.9.1 // indirect
	github.com/dgraph-io/ristretto/v2 v2.2.0 // indirect
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/gdamore/encoding v1.0.1 // indirect
	github.com/gdamore/tcell/v2 v2.13.8 // indirect
	github.com/go-logr/logr v1.4.3 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/flatbuffers v25.2.10+incompatible // indirect
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/klauspost/compress v1.18.0 // indirect
	github.com/lucasb-eyer/go-colorful v1.3.0 // indirect
	github.com/rivo/tview v0.42.0 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/transparency-dev/formats v0.0.0-20251017110053-404c0d5b696c // indirect
	github.com/transparency-dev/merkle v0.0.2 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel v1.40.0 // indirect
	go.opentelemetry.io/otel/metric v1.40.0 // indirect
	go.opentelemetry.io/otel/trace v1.40.0 // indirect
	golang.org/x/crypto v0.48.0 // indirect
	golang.org/x/exp v0.0.0-20240325151524-a685a6edb6d8 // indirect
	golang.org/x/sync v0.19.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
	golang.org/x/term v0.40.0 // indirect
	golang.org/x/text v0.34.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
	k8s.io/klog/v2 v2.130.1 // indirect
)
