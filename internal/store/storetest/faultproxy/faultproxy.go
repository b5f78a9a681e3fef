// Package faultproxy is a TCP proxy for tests that sits between an HTTP/1.1 client (an
// object-store SDK) and a real server on 127.0.0.1 and breaks a share of the requests
// on purpose: it drops connections before or after some bytes, loses responses of
// requests the server executed, delays requests, answers 500 or 503 itself and cuts
// responses short. It parses just enough of HTTP/1.1 (request heads, Content-Length
// and chunked bodies, response heads) to pick a fault per request rather than per
// connection: SDKs keep connections alive, so a per-connection choice would spare
// almost every request.
//
// Only tests import it. It listens on 127.0.0.1 only.
package faultproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is a kind of injected fault.
type Kind string

// The faults the proxy injects. Every kind but Stall is chosen by default.
const (
	// Reset forwards a random prefix of the request (possibly nothing) and closes both
	// connections: the server sees a broken request, the client a dropped connection.
	Reset Kind = "reset"
	// Lost forwards the whole request and closes the connections when the server's
	// answer begins: the operation took effect, the client never learns it.
	Lost Kind = "lost"
	// Truncate forwards the request and then the response up to a random point
	// (inside the head, or inside the body when it has one) and closes.
	Truncate Kind = "truncate"
	// Delay holds the request for up to Config.MaxDelay before forwarding it.
	Delay Kind = "delay"
	// Status500 and Status503 answer the request with that status (and an S3-style
	// error body) without forwarding it, and close the connection.
	Status500 Kind = "500"
	Status503 Kind = "503"
	// Stall reads the request and never answers: a server that hangs. Only chosen
	// when Config.Kinds names it.
	Stall Kind = "stall"
)

// DefaultKinds are the kinds chosen when Config.Kinds is empty.
var DefaultKinds = []Kind{Reset, Lost, Truncate, Delay, Status500, Status503}

// Config configures a Proxy.
type Config struct {
	// Target is the server's address, host:port.
	Target string
	// Rate is the probability that a request gets a fault, 0 to 1.
	Rate float64
	// Kinds are the faults chosen from, uniformly; empty: DefaultKinds.
	Kinds []Kind
	// Seed makes the choices repeatable for one sequence of requests (the order in
	// which concurrent requests arrive still varies).
	Seed uint64
	// MaxDelay bounds a Delay fault. Default 300ms: long enough to reorder concurrent
	// requests, well below any client timeout.
	MaxDelay time.Duration
}

// Proxy is a running fault-injecting proxy. It is safe for concurrent use.
type Proxy struct {
	cfg Config
	ln  net.Listener

	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	requests int
	counts   map[Kind]int
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
	stop     chan struct{}
}

// Start listens on 127.0.0.1 on a free port and proxies to cfg.Target.
func Start(cfg Config) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("faultproxy: no target")
	}
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = DefaultKinds
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 300 * time.Millisecond
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{cfg: cfg, ln: ln, rng: rand.New(rand.NewPCG(cfg.Seed, 0xfa17)), rate: cfg.Rate,
		counts: map[Kind]int{}, conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's address, 127.0.0.1:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetRate changes the fault rate for the requests that follow.
func (p *Proxy) SetRate(rate float64) {
	p.mu.Lock()
	p.rate = rate
	p.mu.Unlock()
}

// Requests returns how many requests the proxy has seen.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Counts returns how many faults of each kind were injected. A Truncate whose
// response ended before the chosen point passed the response whole and is not
// counted.
func (p *Proxy) Counts() map[Kind]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// Faults returns the number of faults injected, all kinds together.
func (p *Proxy) Faults() int {
	n := 0
	for _, v := range p.Counts() {
		n += v
	}
	return n
}

// String summarises the requests and faults, for test logs.
func (p *Proxy) String() string {
	c := p.Counts()
	var parts []string
	for _, k := range []Kind{Reset, Lost, Truncate, Delay, Status500, Status503, Stall} {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
		}
	}
	return fmt.Sprintf("%d requests, %d faults (%s)", p.Requests(), p.Faults(), strings.Join(parts, ", "))
}

// Close stops listening and breaks every open connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// track registers c so that Close breaks it; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pick counts a request and returns its fault ("" for none) and a random number for
// the fault's parameters.
func (p *Proxy) pick() (Kind, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	r := p.rng.Uint64()
	if p.rng.Float64() >= p.rate {
		return "", r
	}
	return p.cfg.Kinds[p.rng.IntN(len(p.cfg.Kinds))], r
}

func (p *Proxy) count(k Kind) {
	p.mu.Lock()
	p.counts[k]++
	p.mu.Unlock()
}

// conn is one client connection and its upstream connection.
type conn struct {
	p        *Proxy
	client   net.Conn
	upstream net.Conn
	ur       *bufio.Reader

	mu sync.Mutex
	// respFault is the fault for the response to the request being forwarded: set
	// before the request goes out, taken by the response copier at the response's
	// first byte. The client sends a request only after it has read the whole
	// previous response, so the next bytes from the server belong to this request.
	respFault Kind
	respRand  uint64
	// respNoBody: the response has no body whatever its Content-Length says (the
	// request was a HEAD).
	respNoBody bool
}

func (c *conn) close() {
	c.client.Close()
	if c.upstream != nil {
		c.upstream.Close()
	}
}

func (p *Proxy) serve(client net.Conn) {
	c := &conn{p: p, client: client}
	defer p.untrack(client)
	defer c.close()
	cr := bufio.NewReaderSize(client, 64<<10)
	for {
		head, err := readHead(cr)
		if err != nil {
			return
		}
		if c.upstream == nil {
			up, err := net.Dial("tcp", p.cfg.Target)
			if err != nil {
				return // the client sees its connection dropped, as with no server
			}
			if !p.track(up) {
				up.Close()
				return
			}
			defer p.untrack(up)
			c.upstream = up
			c.ur = bufio.NewReaderSize(up, 64<<10)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				c.copyResponses()
			}()
		}
		kind, r := p.pick()
		switch kind {
		case Reset:
			p.count(Reset)
			var req bytes.Buffer
			req.Write(head)
			_ = copyBody(&req, cr, head) // what the client managed to send
			if n := int(r % uint64(req.Len()+1)); n > 0 {
				c.upstream.Write(req.Bytes()[:n])
			}
			return
		case Status500, Status503:
			if !expectsContinue(head) {
				// Read the body first, so that the client reads the answer rather
				// than failing to write the rest of its request.
				if err := copyBody(io.Discard, cr, head); err != nil {
					return
				}
			}
			p.count(kind)
			writeError(client, kind)
			return
		case Stall:
			p.count(Stall)
			<-p.stop
			return
		case Delay:
			p.count(Delay)
			d := time.Duration(r % uint64(p.cfg.MaxDelay))
			select {
			case <-time.After(d):
			case <-p.stop:
				return
			}
		case Lost, Truncate:
			c.mu.Lock()
			c.respFault, c.respRand = kind, r
			c.respNoBody = bytes.HasPrefix(head, []byte("HEAD "))
			c.mu.Unlock()
		}
		if _, err := c.upstream.Write(head); err != nil {
			return
		}
		if err := copyBody(c.upstream, cr, head); err != nil {
			return
		}
	}
}

// copyResponses copies the server's responses to the client, applying the fault the
// request side set for each.
func (c *conn) copyResponses() {
	defer c.close()
	for {
		if _, err := c.ur.Peek(1); err != nil {
			return
		}
		c.mu.Lock()
		kind, r, noBody := c.respFault, c.respRand, c.respNoBody
		c.respFault = ""
		c.mu.Unlock()
		switch kind {
		case Lost:
			c.p.count(Lost)
			return
		case Truncate:
			c.truncate(r, noBody)
			return
		}
		buf, _ := c.ur.Peek(c.ur.Buffered())
		if _, err := c.client.Write(buf); err != nil {
			return
		}
		c.ur.Discard(len(buf))
	}
}

// truncate forwards the response up to a random point and returns (the caller
// closes). Interim 1xx responses pass whole; the cut falls in the final one.
func (c *conn) truncate(r uint64, noBody bool) {
	for {
		head, err := readHead(c.ur)
		if err != nil {
			return
		}
		if bytes.HasPrefix(head, []byte("HTTP/1.1 1")) {
			if _, err := c.client.Write(head); err != nil {
				return
			}
			continue
		}
		n, _ := contentLength(head)
		if status := string(head[min(9, len(head)):min(12, len(head))]); noBody || status == "204" || status == "304" {
			n = 0
		}
		if n <= 0 {
			c.p.count(Truncate)
			c.client.Write(head[:int(r%uint64(len(head)))])
			return
		}
		cut := int64(r % uint64(int64(len(head))+n))
		c.p.count(Truncate)
		if cut < int64(len(head)) {
			c.client.Write(head[:cut])
			return
		}
		if _, err := c.client.Write(head); err != nil {
			return
		}
		io.CopyN(c.client, c.ur, cut-int64(len(head)))
		return
	}
}

// maxHead bounds a request or response head; S3 heads are a few KiB.
const maxHead = 1 << 20

// readHead reads an HTTP/1.1 message head: the start line and header fields up to
// and including the empty line.
func readHead(r *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := r.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) && len(head) < maxHead {
				continue
			}
			return nil, err
		}
		if len(head) > maxHead {
			return nil, errors.New("faultproxy: message head too large")
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			if len(head) == len(line) {
				head = head[:0] // stray empty line between messages
				continue
			}
			return head, nil
		}
	}
}

// header returns the value of the first header field called name (case-insensitive).
func header(head []byte, name string) (string, bool) {
	lines := strings.Split(string(head), "\n")
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func contentLength(head []byte) (int64, bool) {
	v, ok := header(head, "Content-Length")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

func expectsContinue(head []byte) bool {
	v, _ := header(head, "Expect")
	return strings.EqualFold(v, "100-continue")
}

// copyBody copies the body of the request whose head is head from r to w, byte for
// byte: Content-Length bytes, or chunk by chunk up to the last chunk and trailers.
func copyBody(w io.Writer, r *bufio.Reader, head []byte) error {
	if te, _ := header(head, "Transfer-Encoding"); strings.Contains(strings.ToLower(te), "chunked") {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
			sz, _, _ := strings.Cut(strings.TrimSpace(line), ";")
			n, err := strconv.ParseInt(sz, 16, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("faultproxy: bad chunk size %q", line)
			}
			if n == 0 {
				for { // trailers, up to the empty line
					t, err := r.ReadString('\n')
					if err != nil {
						return err
					}
					if _, err := io.WriteString(w, t); err != nil {
						return err
					}
					if t == "\r\n" || t == "\n" {
						return nil
					}
				}
			}
			if _, err := io.CopyN(w, r, n+2); err != nil { // data and its CRLF
				return err
			}
		}
	}
	if n, ok := contentLength(head); ok && n > 0 {
		_, err := io.CopyN(w, r, n)
		return err
	}
	return nil
}

// writeError answers with the status of kind, as S3 would.
func writeError(w io.Writer, kind Kind) {
	code, text, s3code := 500, "Internal Server Error", "InternalError"
	if kind == Status503 {
		code, text, s3code = 503, "Service Unavailable", "SlowDown"
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>injected by the test proxy</Message></Error>`, s3code)
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, text, len(body), body)
}
