package broker

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// readCache serves segment bytes to fetches. Recently flushed objects are
// kept whole (the tail cache), so caught-up consumers never cause a GET;
// older segments are fetched with ranged GETs into a bounded LRU block
// cache, one GET per segment however many consumers ask at once.
type readCache struct {
	bucket interface {
		GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
	}
	m *metrics

	mu        sync.Mutex
	tail      map[string][]byte
	tailFIFO  *list.List // of object names, oldest first
	tailBytes int64
	tailMax   int64

	blocks     map[blockKey]*list.Element
	blockLRU   *list.List // of *block, most recent first
	blockBytes int64
	blockMax   int64
	inflight   map[blockKey]*blockCall
}

type blockKey struct {
	object string
	pos    int64
}

type block struct {
	key  blockKey
	data []byte
}

type blockCall struct {
	done chan struct{}
	data []byte
	err  error
}

func newReadCache(bucket interface {
	GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
}, tailMax, blockMax int64, m *metrics,
) *readCache {
	return &readCache{
		bucket: bucket, m: m,
		tail: map[string][]byte{}, tailFIFO: list.New(), tailMax: tailMax,
		blocks: map[blockKey]*list.Element{}, blockLRU: list.New(), blockMax: blockMax,
		inflight: map[blockKey]*blockCall{},
	}
}

// putObject keeps a just-flushed object for tail reads.
func (c *readCache) putObject(name string, obj []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tail[name] = obj
	c.tailFIFO.PushBack(name)
	c.tailBytes += int64(len(obj))
	for c.tailBytes > c.tailMax && c.tailFIFO.Len() > 1 {
		old := c.tailFIFO.Remove(c.tailFIFO.Front()).(string)
		c.tailBytes -= int64(len(c.tail[old]))
		delete(c.tail, old)
	}
}

// segment returns the bytes of seg.
func (c *readCache) segment(ctx context.Context, seg segment) ([]byte, error) {
	key := blockKey{seg.Object, seg.Pos}
	c.mu.Lock()
	if obj, ok := c.tail[seg.Object]; ok && int64(len(obj)) >= seg.Pos+seg.Len {
		c.mu.Unlock()
		c.m.cacheHits.WithLabelValues("tail").Inc()
		return obj[seg.Pos : seg.Pos+seg.Len], nil
	}
	if el, ok := c.blocks[key]; ok {
		c.blockLRU.MoveToFront(el)
		data := el.Value.(*block).data
		c.mu.Unlock()
		c.m.cacheHits.WithLabelValues("block").Inc()
		return data, nil
	}
	call, ok := c.inflight[key]
	if !ok {
		call = &blockCall{done: make(chan struct{})}
		c.inflight[key] = call
		go c.load(key, seg, call)
	}
	c.mu.Unlock()
	c.m.cacheMisses.Inc()
	select {
	case <-call.done:
		return call.data, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// load GETs one segment's byte range. It runs detached from any one
// fetch's context because others may be waiting on the same call.
func (c *readCache) load(key blockKey, seg segment, call *blockCall) {
	ctx, cancel := context.WithTimeout(context.Background(), 30e9)
	defer cancel()
	call.data, call.err = c.get(ctx, seg)
	c.mu.Lock()
	delete(c.inflight, key)
	if call.err == nil {
		c.blocks[key] = c.blockLRU.PushFront(&block{key: key, data: call.data})
		c.blockBytes += int64(len(call.data))
		for c.blockBytes > c.blockMax && c.blockLRU.Len() > 1 {
			old := c.blockLRU.Remove(c.blockLRU.Back()).(*block)
			delete(c.blocks, old.key)
			c.blockBytes -= int64(len(old.data))
		}
	}
	c.mu.Unlock()
	close(call.done)
}

// get reads one segment, retrying a transient failure a few times: a
// catch-up fetch spans many objects, and one flaky GET should cost latency,
// not the fetch.
func (c *readCache) get(ctx context.Context, seg segment) ([]byte, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var data []byte
		if data, err = c.getOnce(ctx, seg); err == nil {
			return data, nil
		}
	}
	return nil, err
}

func (c *readCache) getOnce(ctx context.Context, seg segment) ([]byte, error) {
	rc, err := c.bucket.GetRange(ctx, seg.Object, seg.Pos, seg.Len)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", seg.Object, err)
	}
	defer rc.Close()
	data := make([]byte, seg.Len)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("reading %s@%d+%d: %w", seg.Object, seg.Pos, seg.Len, err)
	}
	return data, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// notifier wakes long-polling fetches when new data is committed.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// wait returns a channel closed at the next broadcast.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}
