package faultproxy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server is an HTTP server on 127.0.0.1 that stores PUT bodies and serves them back,
// counting the requests it executed.
type server struct {
	*httptest.Server
	executed atomic.Int64
	objects  map[string][]byte
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{objects: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.executed.Add(1)
		switch r.Method {
		case http.MethodPut:
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			s.objects[r.URL.Path] = b
		case http.MethodGet, http.MethodHead:
			b, ok := s.objects[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b)
		}
	})
	s.Server = httptest.NewServer(mux) // one request at a time: the map needs no lock
	s.Config.SetKeepAlivesEnabled(true)
	t.Cleanup(s.Close)
	return s
}

func startProxy(t *testing.T, target string, rate float64, kinds ...Kind) *Proxy {
	t.Helper()
	p, err := Start(Config{Target: target, Rate: rate, Kinds: kinds, Seed: 7, MaxDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// client makes one request at a time over kept-alive connections, without the
// transport's own retries hiding a fault (they only apply to reused idle connections).
func client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
}

func do(c *http.Client, method, url string, body io.Reader, length int64) (int, []byte, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.ContentLength = length
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func payload(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed + i>>9)
	}
	return b
}

// With no faults the proxy is transparent: kept-alive connections carry PUTs with a
// Content-Length and chunked bodies, GETs and HEADs, and every byte arrives.
func TestTransparentWithoutFaults(t *testing.T) {
	srv := newServer(t)
	p := startProxy(t, srv.Listener.Addr().String(), 0)
	c := client()
	base := "http://" + p.Addr()
	const n = 40
	for i := range n / 4 {
		data := payload(1000+i*9000, i)
		key := fmt.Sprintf("%s/obj-%d", base, i)
		if st, _, err := do(c, http.MethodPut, key, bytes.NewReader(data), int64(len(data))); err != nil || st != 200 {
			t.Fatalf("PUT with a length: %d, %v", st, err)
		}
		// an unknown length: the body goes chunked
		if st, _, err := do(c, http.MethodPut, key+"-chunked", io.MultiReader(bytes.NewReader(data)), -1); err != nil || st != 200 {
			t.Fatalf("chunked PUT: %d, %v", st, err)
		}
		for _, k := range []string{key, key + "-chunked"} {
			st, got, err := do(c, http.MethodGet, k, nil, 0)
			if err != nil || st != 200 || sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("GET %s: %d, %d bytes, %v; want %d bytes", k, st, len(got), err, len(data))
			}
		}
	}
	if got := p.Requests(); got != n {
		t.Errorf("Requests() = %d, want %d", got, n)
	}
	if f := p.Faults(); f != 0 {
		t.Errorf("%d faults at rate 0", f)
	}
	if got := srv.executed.Load(); got != n {
		t.Errorf("the server executed %d requests, want %d", got, n)
	}
}

// Every kind of fault, at rate 1, does to the client and server what it says.
func TestEachFault(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		// method of the request: PUT for faults about the request, GET for the response
		method string
		// wantStatus is the status the client must see; 0: the request must fail
		wantStatus int
		// wantExecuted: whether the server must (true) or must not (false) have run
		// the request; nil: either
		wantExecuted *bool
	}{
		// the server may have seen the whole request head
		{"reset", Reset, http.MethodPut, 0, nil},
		{"lost response of an executed PUT", Lost, http.MethodPut, 0, ptr(true)},
		{"truncated GET", Truncate, http.MethodGet, 0, ptr(true)},
		{"500 without forwarding", Status500, http.MethodPut, 500, ptr(false)},
		{"503 without forwarding", Status503, http.MethodPut, 503, ptr(false)},
		{"delay, then success", Delay, http.MethodPut, 200, ptr(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			data := payload(64<<10, 1)
			srv.objects["/obj"] = data
			p := startProxy(t, srv.Listener.Addr().String(), 1, tt.kind)
			var body io.Reader
			if tt.method == http.MethodPut {
				body = bytes.NewReader(data)
			}
			// a fresh connection per request: the transport retries nothing
			st, got, err := do(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
				tt.method, "http://"+p.Addr()+"/obj", body, int64(len(data)))
			if tt.wantStatus == 0 {
				if err == nil {
					t.Fatalf("the request succeeded (status %d, %d bytes); want it to fail", st, len(got))
				}
			} else if err != nil || st != tt.wantStatus {
				t.Fatalf("status %d, err %v; want %d", st, err, tt.wantStatus)
			}
			if tt.wantExecuted != nil {
				if ex := srv.executed.Load() > 0; ex != *tt.wantExecuted {
					t.Errorf("the server executed the request: %v, want %v", ex, *tt.wantExecuted)
				}
			}
			if c := p.Counts()[tt.kind]; c != 1 {
				t.Errorf("Counts()[%s] = %d, want 1 (%s)", tt.kind, c, p)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// A stalled request hangs until the client gives up; Close ends it.
func TestStallAndClose(t *testing.T) {
	srv := newServer(t)
	p := startProxy(t, srv.Listener.Addr().String(), 1, Stall)
	c := &http.Client{Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, _, err := do(c, http.MethodGet, "http://"+p.Addr()+"/obj", nil, 0)
	if err == nil || !strings.Contains(err.Error(), "Timeout") && !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("stalled request: %v, want a client timeout", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("the stalled request ended after %v, before the client's timeout", d)
	}
	addr := p.Addr()
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a stalled connection open")
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Error("the proxy still accepts connections after Close")
	}
}

// At a 5% rate, about 5% of the requests get a fault, and the choices repeat with
// the seed.
func TestRate(t *testing.T) {
	srv := newServer(t)
	srv.objects["/obj"] = payload(100, 0)
	p := startProxy(t, srv.Listener.Addr().String(), 0.05, Status503)
	c := client()
	const n = 400
	var failed int
	for range n {
		st, _, err := do(c, http.MethodGet, "http://"+p.Addr()+"/obj", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st == 503 {
			failed++
		}
	}
	if failed < n*2/100 || failed > n*9/100 {
		t.Errorf("%d of %d requests failed at a 5%% rate", failed, n)
	}
	if got := p.Counts()[Status503]; got != failed {
		t.Errorf("Counts()[503] = %d, the client saw %d", got, failed)
	}
}
