package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxPipelined bounds the requests a client may have in flight on one
// connection; the read loop stops reading past it, which pushes back on the
// client through TCP.
const maxPipelined = 64

// respFuture produces a request's response. The write loop calls futures in
// request order, as Kafka requires; a nil response means "send nothing"
// (acks=0 produce).
type respFuture func() kmsg.Response

// conn is one client connection: a read loop that decodes requests and
// starts their handling in order, and a write loop that sends responses in
// the same order.
type conn struct {
	b      *Broker
	nc     net.Conn
	queue  chan pendingResp
	once   sync.Once
	closed chan struct{}
	// clientID and clientSoftware are informational (logs).
	clientID string
	// producing counts this connection's produce requests waiting for a
	// flush (wal.go: a client at its in-flight cap asks for an early flush).
	producing atomic.Int32
}

type pendingResp struct {
	corr   int32
	key    int16
	flex   bool
	future respFuture
}

func newConn(b *Broker, nc net.Conn) *conn {
	return &conn{b: b, nc: nc, queue: make(chan pendingResp, maxPipelined), closed: make(chan struct{})}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.closed)
		c.nc.Close()
	})
}

// serve runs the connection until the client leaves or a frame is bad.
func (c *conn) serve() {
	c.b.m.connections.Inc()
	defer c.b.m.connections.Dec()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	err := c.readLoop()
	close(c.queue)
	<-done
	c.close()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.b.log.Warn("closing kafka connection", "remote", c.nc.RemoteAddr().String(), "client_id", c.clientID, "reason", err)
	}
}

// ErrFrame marks a malformed request frame; the connection is closed.
var ErrFrame = errors.New("malformed request frame")

func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.b.cfg.MaxRequestBytes {
			return fmt.Errorf("%w: frame size %d (max %d)", ErrFrame, size, c.b.cfg.MaxRequestBytes)
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return err
		}
		c.b.m.requestBytes.Add(float64(size + 4))
		p, err := c.handleFrame(frame)
		if err != nil {
			return err
		}
		select {
		case c.queue <- p:
		case <-c.closed:
			return net.ErrClosed
		}
	}
}

// parsedRequest is a decoded request header and body.
type parsedRequest struct {
	key, version int16
	corr         int32
	clientID     string
	req          kmsg.Request
}

// parseFrame decodes a request frame (without its size prefix). It never
// panics on hostile input; it is fuzzed.
func parseFrame(frame []byte) (parsedRequest, error) {
	var p parsedRequest
	if len(frame) < 8 {
		return p, fmt.Errorf("%w: %d byte header", ErrFrame, len(frame))
	}
	be := binary.BigEndian
	p.key = int16(be.Uint16(frame[0:]))
	p.version = int16(be.Uint16(frame[2:]))
	p.corr = int32(be.Uint32(frame[4:]))
	rest := frame[8:]
	if len(rest) < 2 {
		return p, fmt.Errorf("%w: missing client id", ErrFrame)
	}
	idLen := int16(be.Uint16(rest))
	rest = rest[2:]
	if idLen > 0 {
		if int(idLen) > len(rest) {
			return p, fmt.Errorf("%w: client id length %d", ErrFrame, idLen)
		}
		p.clientID = string(rest[:idLen])
		rest = rest[idLen:]
	}
	req := kmsg.RequestForKey(p.key)
	if req == nil {
		return p, fmt.Errorf("%w: unknown api key %d", ErrFrame, p.key)
	}
	if p.version < 0 || p.version > req.MaxVersion() {
		// The caller decides: ApiVersions answers UNSUPPORTED_VERSION.
		p.req = req
		return p, errUnsupportedVersion
	}
	req.SetVersion(p.version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return p, err
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return p, fmt.Errorf("%w: %s v%d body: %v", ErrFrame, kmsg.NameForKey(p.key), p.version, err)
	}
	p.req = req
	return p, nil
}

var errUnsupportedVersion = errors.New("unsupported api version")

// skipTags skips a flexible header's tagged fields.
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad tagged field count", ErrFrame)
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		_, k = binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: bad tag", ErrFrame)
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: bad tag size", ErrFrame)
		}
		b = b[k+int(size):]
	}
	return b, nil
}

func (c *conn) handleFrame(frame []byte) (pendingResp, error) {
	p, err := parseFrame(frame)
	c.clientID = p.clientID
	if p.key == int16(kmsg.ApiVersions) && (errors.Is(err, errUnsupportedVersion) || err == nil && p.version > handlers[p.key].max) {
		// KIP-511: answer with v0 framing and our ranges so the client can pick.
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = errUnsupportedVersionCode
		resp.ApiKeys = c.b.apiVersionKeys()
		return pendingResp{corr: p.corr, key: p.key, future: func() kmsg.Response { return resp }}, nil
	}
	if err != nil {
		return pendingResp{}, err
	}
	h, ok := handlers[p.key]
	if !ok || p.version < h.min || p.version > h.max {
		return pendingResp{}, fmt.Errorf("%w: %s v%d is not served", ErrFrame, kmsg.NameForKey(p.key), p.version)
	}
	start := time.Now()
	future, err := h.fn(c, p.req)
	if err != nil {
		return pendingResp{}, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(p.key), p.version, err)
	}
	name := kmsg.NameForKey(p.key)
	timed := func() kmsg.Response {
		resp := future()
		c.b.m.requests.WithLabelValues(name).Inc()
		c.b.m.requestSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		return resp
	}
	// ApiVersions responses never carry header tags (KIP-511).
	flex := p.req.IsFlexible() && p.key != int16(kmsg.ApiVersions)
	return pendingResp{corr: p.corr, key: p.key, flex: flex, future: timed}, nil
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	for p := range c.queue {
		resp := p.future()
		if resp == nil {
			continue
		}
		buf = append(buf[:0], 0, 0, 0, 0)
		buf = binary.BigEndian.AppendUint32(buf, uint32(p.corr))
		if p.flex {
			buf = append(buf, 0)
		}
		buf = resp.AppendTo(buf)
		binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
		c.b.m.responseBytes.Add(float64(len(buf)))
		if _, err := w.Write(buf); err != nil {
			c.close()
			c.drain()
			return
		}
		if len(c.queue) == 0 {
			if err := w.Flush(); err != nil {
				c.close()
				c.drain()
				return
			}
		}
	}
	_ = w.Flush()
}

// drain consumes queued futures after a write failure so that the read loop
// never blocks on a full queue and produce waiters are released.
func (c *conn) drain() {
	for range c.queue {
	}
}
