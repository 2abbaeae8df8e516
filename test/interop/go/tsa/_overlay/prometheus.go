// Copyright 2022 The Sigstore Authors.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// tlog-worm tests: this file replaces pkg/server/prometheus.go of
// github.com/sigstore/timestamp-authority/v2 v2.2.1 in the copy of its source the tests build
// (see buildTimestampAuthority in test/anchor/timestamp-authority.ts). The only change: the
// metrics listener, hard-coded to ":2112" upstream (so two servers on one machine cannot both
// start), listens on $TSA_METRICS_ADDR when it is set; the tests set 127.0.0.1:0.

package server

import (
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewPrometheusServer creates a server for serving prometheus metrics
func NewPrometheusServer(readTimeout, writeTimeout time.Duration) *http.Server {
	addr := os.Getenv("TSA_METRICS_ADDR")
	if addr == "" {
		addr = ":2112"
	}
	return &http.Server{
		Addr:         addr,
		ReadTimeout:  readTimeout,
		WriteTimeout: writeTimeout,
		Handler:      promhttp.Handler(),
	}
}
