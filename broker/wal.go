package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/kbatch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/streamobj"
)

// appendReq is one partition's batches from one produce request, waiting
// for the flush that makes them durable.
type appendReq struct {
	p       *partition
	batches [][]byte
	hdrs    []kbatch.Header
	bytes   int
	done    chan struct{} // closed once result is set; any number may wait
	result  appendResult
}

func newAppendReq(p *partition, hdrs []kbatch.Header, batches [][]byte, size int) *appendReq {
	return &appendReq{p: p, hdrs: hdrs, batches: batches, bytes: size, done: make(chan struct{})}
}

func (r *appendReq) finish(res appendResult) {
	r.result = res
	close(r.done)
}

// idempotent reports whether the request carries an idempotent producer's batches.
func (r *appendReq) idempotent() bool { return len(r.hdrs) > 0 && r.hdrs[0].ProducerID >= 0 }

type appendResult struct {
	baseOffset    int64
	logAppendTime int64 // -1 unless the topic uses LogAppendTime
	logStart      int64
	err           *kerr.Error
}

// walWriter batches appends from every partition this broker leads into
// one object per flush (DESIGN §4): at wal.flush.interval after the first
// buffered append, or at wal.flush.bytes. One flush is in flight at a time,
// so offsets are assigned at seal time from the committed high watermark
// and a failed flush can never leave a gap.
type walWriter struct {
	b *Broker

	mu          sync.Mutex
	space       *sync.Cond // appenders wait here while the buffer is over its cap
	pending     []*appendReq
	bytes       int
	closed      bool
	kick        chan struct{}
	stop        chan struct{}
	done        chan struct{}
	seq         atomic.Uint64
	incarnation int64

	commitMu sync.Mutex // held while a flush or a log-start move commits

	// urgentFlag asks for a flush before the cadence's next one: a client
	// has as many produce requests waiting as it may have in flight.
	urgentFlag atomic.Bool
}

// clientInFlightCap is how many produce requests Kafka clients keep in
// flight per connection by default (Java, librdkafka with idempotence,
// franz-go). A connection with that many waiting for a flush is a client
// that can send nothing more until they are answered: its next records
// would wait a second full cycle.
const clientInFlightCap = 5

// urgent asks for an early flush. It is honoured no sooner than
// wal.flush.min.interval (default a quarter of the flush interval) after
// the previous flush started, which bounds PUTs per second at four times
// the cadence's rate, and only while less than an eighth of
// wal.flush.bytes is buffered: at high throughput, flushes stay large
// (object PUTs per GiB do not grow) and clients' in-flight requests carry
// plenty each.
func (w *walWriter) urgent() {
	if w.urgentFlag.Swap(true) {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *walWriter) urgentDue(lastStart time.Time) bool {
	return w.urgentFlag.Load() && time.Since(lastStart) >= w.b.cfg.FlushMinInterval &&
		w.bufferedBytes() < w.b.cfg.FlushBytes/8
}

func newWALWriter(b *Broker) *walWriter {
	w := &walWriter{
		b:           b,
		kick:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		incarnation: time.Now().UnixNano(),
	}
	w.space = sync.NewCond(&w.mu)
	return w
}

var errShuttingDown = errors.New("broker shutting down")

// waitSpace blocks while more than four flushes' worth of bytes are
// waiting (backpressure onto the connection).
func (w *walWriter) waitSpace() {
	w.mu.Lock()
	for !w.closed && w.bytes > 4*w.b.cfg.FlushBytes {
		w.space.Wait()
	}
	w.mu.Unlock()
}

// append queues r for the next flush without blocking; callers wait for
// space first (waitSpace) so that they never block holding a partition lock.
func (w *walWriter) append(r *appendReq) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errShuttingDown
	}
	w.pending = append(w.pending, r)
	w.bytes += r.bytes
	first := len(w.pending) == 1
	full := w.bytes >= w.b.cfg.FlushBytes
	w.mu.Unlock()
	if first || full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// dropQueued fails the requests queued for p (a term of ours that ended).
func (w *walWriter) dropQueued(p *partition, code *kerr.Error) {
	drop := w.unqueue(func(q *appendReq) bool { return q.p == p })
	if len(drop) > 0 {
		p.settlePending(drop, true)
		fail(drop, code)
	}
}

// unqueue removes and returns the queued requests that match.
func (w *walWriter) unqueue(match func(*appendReq) bool) []*appendReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*appendReq
	keep := w.pending[:0]
	for _, q := range w.pending {
		if match(q) {
			out = append(out, q)
			w.bytes -= q.bytes
			continue
		}
		keep = append(keep, q)
	}
	for i := len(keep); i < len(w.pending); i++ {
		w.pending[i] = nil
	}
	w.pending = keep
	w.space.Broadcast()
	return out
}

func (w *walWriter) bufferedBytes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}

func (w *walWriter) take() []*appendReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	reqs := w.pending
	w.pending, w.bytes = nil, 0
	w.space.Broadcast()
	return reqs
}

// run is the flush loop; it returns after the final flush on close.
// Flushes keep a cadence: one starts wal.flush.interval after the previous
// one started (at once if the broker was idle that long), or as soon as
// wal.flush.bytes are buffered. That bounds PUTs per second per broker at
// low traffic, while a record never waits for a full interval of its own.
func (w *walWriter) run() {
	defer close(w.done)
	var lastStart time.Time
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.flush(w.take())
			return
		}
		if w.bufferedBytes() == 0 {
			continue
		}
		if wait := time.Until(lastStart.Add(w.b.cfg.FlushInterval)); wait > 0 && !w.urgentDue(lastStart) {
			timer := time.NewTimer(wait)
			// An urgent request may come before the earliest time it
			// can be honoured: look again then.
			early := time.NewTimer(time.Until(lastStart.Add(w.b.cfg.FlushMinInterval)))
		wait:
			for w.bufferedBytes() < w.b.cfg.FlushBytes && !w.urgentDue(lastStart) {
				select {
				case <-timer.C:
					break wait
				case <-early.C:
				case <-w.kick:
				case <-w.stop:
					break wait
				}
			}
			timer.Stop()
			early.Stop()
		}
		w.urgentFlag.Store(false)
		lastStart = time.Now()
		w.flush(w.take())
	}
}

// close flushes what is buffered and stops the loop; later appends fail.
func (w *walWriter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.space.Broadcast()
	w.mu.Unlock()
	close(w.stop)
	<-w.done
}

// objectName spreads objects over key prefixes (hash first) so that S3's
// per-prefix request limits never bind.
func (w *walWriter) objectName() string {
	rest := fmt.Sprintf("wal/%d-%d-%d.fobj", w.b.cfg.NodeID, w.incarnation, w.seq.Add(1))
	h := fnv.New32a()
	h.Write([]byte(rest))
	return fmt.Sprintf("%04x/%s", h.Sum32()&0xffff, rest)
}

// partFlush is one partition's share of a flush.
type partFlush struct {
	p      *partition
	reqs   []*appendReq
	epoch  int32
	modRev int64
	base   int64
	end    int64   // next offset after this flush
	bases  []int64 // base offset of each request
	st     partitionState
	seg    segment
}

// flush makes reqs durable: assign offsets, upload one object, commit its
// segments fenced by each partition's record, then answer the producers.
func (w *walWriter) flush(reqs []*appendReq) {
	if len(reqs) == 0 {
		return
	}
	start := time.Now()
	b := w.b
	// Partition records have one writer at a time: flushes and log-start
	// moves (retention, DeleteRecords) take turns.
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	var (
		parts []*partFlush
		index = map[*partition]*partFlush{}
		size  int
	)
	for _, r := range reqs {
		pf := index[r.p]
		if pf == nil {
			pf = &partFlush{p: r.p}
			index[r.p] = pf
			parts = append(parts, pf)
		}
		pf.reqs = append(pf.reqs, r)
		size += r.bytes
	}

	// Assign offsets. Only this goroutine moves hw, so it is stable here.
	now := time.Now().UnixMilli()
	builder := streamobj.NewBuilder(size)
	live := parts[:0]
	for _, pf := range parts {
		p := pf.p
		p.mu.RLock()
		leader, deleted := p.leader, p.deleted
		pf.epoch, pf.modRev, pf.base = p.epoch, p.modRev, p.hw
		pf.st = partitionState{LeaderEpoch: p.epoch, Leader: b.cfg.NodeID, LogStartOffset: p.logStart}
		producers := p.producers
		p.mu.RUnlock()
		if deleted {
			w.failPartition(pf.reqs, kerr.UnknownTopicOrPartition)
			continue
		}
		if !leader {
			w.failPartition(pf.reqs, kerr.NotLeaderForPartition)
			continue
		}
		logAppend := p.topic.config("message.timestamp.type") == "LogAppendTime"
		next := pf.base
		var batches [][]byte
		maxTS := int64(-1)
		var records int32
		for _, r := range pf.reqs {
			pf.bases = append(pf.bases, next)
			for i, bt := range r.batches {
				kbatch.SetBaseOffset(bt, next)
				kbatch.SetLeaderEpoch(bt, pf.epoch)
				ts := r.hdrs[i].MaxTimestamp
				if logAppend {
					kbatch.SetLogAppendTime(bt, now)
					ts = now
				}
				maxTS = max(maxTS, ts)
				next += int64(r.hdrs[i].NumRecords)
				records += r.hdrs[i].NumRecords
				batches = append(batches, bt)
			}
		}
		pf.end = next
		pf.st.HighWatermark = next
		pf.st.Producers = commitProducers(producers, pf.reqs, pf.bases, now)
		e := builder.AddChunk(streamobj.Entry{TopicID: p.topic.id, Partition: p.id, BaseOffset: pf.base, LastOffset: next - 1, MaxTimestamp: maxTS, Records: records}, batches)
		pf.seg = segment{Pos: e.Pos, Len: e.Len, Base: pf.base, Last: next - 1, MaxTS: maxTS, Records: records, Epoch: pf.epoch}
		live = append(live, pf)
	}
	parts = live
	if len(parts) == 0 {
		return
	}
	obj := builder.Finish()
	name := w.objectName()
	for _, pf := range parts {
		pf.seg.Object = name
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.upload(ctx, name, obj); err != nil {
		b.m.flushErrors.WithLabelValues("upload").Inc()
		b.log.Warn("flush upload failed; producers get a retriable error", "object", name, "err", err)
		for _, pf := range parts {
			w.failPartition(pf.reqs, kerr.KafkaStorageError)
		}
		return
	}
	rev, err := w.commit(ctx, parts)
	if err != nil {
		// The object stays unreferenced; orphan collection removes it.
		for _, pf := range parts {
			w.failPartition(pf.reqs, errCodeFor(err))
		}
		return
	}

	// Publish: the cache first, so a woken fetch finds the bytes in memory.
	b.cache.putObject(name, obj)
	for _, pf := range parts {
		p := pf.p
		p.mu.Lock()
		if p.epoch == pf.epoch && p.modRev == pf.modRev {
			segs := make([]segment, len(p.segs), len(p.segs)+1)
			copy(segs, p.segs)
			p.segs = append(segs, pf.seg)
			p.hw = pf.end
			p.modRev = rev
			p.producers = pf.st.Producers
		}
		logStart := p.logStart
		p.mu.Unlock()
		p.settlePending(pf.reqs, false)
		logAppend := p.topic.config("message.timestamp.type") == "LogAppendTime"
		for i, r := range pf.reqs {
			res := appendResult{baseOffset: pf.bases[i], logAppendTime: -1, logStart: logStart}
			if logAppend {
				res.logAppendTime = now
			}
			r.finish(res)
		}
	}
	b.notify.broadcast()
	b.m.flushes.Inc()
	b.m.flushBytes.Add(float64(len(obj)))
	b.m.flushSeconds.Observe(time.Since(start).Seconds())
}

// upload PUTs the object, retrying a few times: a transient object-store
// error should cost latency, not a produce failure.
func (w *walWriter) upload(ctx context.Context, name string, obj []byte) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
		}
		if err = w.b.bucket.Upload(ctx, name, bytesReader(obj), int64(len(obj))); err == nil {
			return nil
		}
		w.b.m.flushErrors.WithLabelValues("upload_attempt").Inc()
	}
	return err
}

var errFenced = errors.New("partition leadership lost")

// commitAttemptTimeout bounds one flush commit before its outcome is read
// back from the metadata store.
const commitAttemptTimeout = 2500 * time.Millisecond

// commit records the flush's segments and new high watermarks in one
// transaction, conditional on every partition record being as this leader
// last left it.
func (w *walWriter) commit(ctx context.Context, parts []*partFlush) (int64, error) {
	b := w.b
	txn := b.meta.Txn()
	for _, pf := range parts {
		st, _ := json.Marshal(pf.st)
		seg, _ := json.Marshal(pf.seg)
		txn.IfModRevision(pf.p.key(), pf.modRev).
			Put(segmentKey(pf.p.topic.id, pf.p.id, pf.base), seg).
			Put(pf.p.key(), st)
	}
	// A transaction sent while the etcd leader dies waits for the server's
	// request timeout (about 7 s) though a new leader is elected in about
	// one; giving up sooner and reading the outcome back (below) shortens
	// that stall. The read-back is exact: it is linearizable, served by a
	// leader that has committed (or dropped) everything its predecessor had.
	cctx, ccancel := context.WithTimeout(ctx, commitAttemptTimeout)
	rev, err := txn.Commit(cctx)
	ccancel()
	if err == nil {
		return rev, nil
	}
	if errors.Is(err, metastore.ErrConflict) {
		b.m.flushErrors.WithLabelValues("fenced").Inc()
		w.resync(ctx, parts)
		return 0, errFenced
	}
	// The outcome is unknown (timeout, lost connection): find out whether
	// the transaction landed before answering anyone.
	b.m.flushErrors.WithLabelValues("commit").Inc()
	for attempt := 0; attempt < 10 && ctx.Err() == nil; attempt++ {
		kv, gerr := b.meta.Get(ctx, parts[0].p.key())
		if gerr == nil {
			var st partitionState
			if json.Unmarshal(kv.Value, &st) == nil && kv.ModRevision != parts[0].modRev &&
				st.LeaderEpoch == parts[0].epoch && st.HighWatermark == parts[0].end {
				return kv.ModRevision, nil
			}
			if kv.ModRevision == parts[0].modRev {
				return 0, fmt.Errorf("metadata commit failed: %w", err)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.resync(ctx, parts)
	return 0, fmt.Errorf("metadata commit outcome unknown: %w", err)
}

// resync re-reads the records of partitions whose commit failed: a
// partition whose epoch moved on is no longer ours; one still ours is
// reloaded so the next flush starts from the committed state.
func (w *walWriter) resync(ctx context.Context, parts []*partFlush) {
	for _, pf := range parts {
		p := pf.p
		kv, err := w.b.meta.Get(ctx, p.key())
		if err != nil {
			continue
		}
		var st partitionState
		if json.Unmarshal(kv.Value, &st) != nil {
			continue
		}
		if st.LeaderEpoch != pf.epoch || st.Leader != w.b.cfg.NodeID {
			p.mu.Lock()
			p.leader = false
			p.mu.Unlock()
			w.b.log.Warn("partition fenced by a newer leader", "topic", p.topic.name, "partition", p.id, "our_epoch", pf.epoch, "epoch", st.LeaderEpoch)
			continue
		}
		segs, err := p.loadSegments(ctx)
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.modRev, p.hw, p.logStart, p.segs = kv.ModRevision, st.HighWatermark, st.LogStartOffset, segs
		p.producers = st.Producers
		p.mu.Unlock()
	}
}

func errCodeFor(err error) *kerr.Error {
	if errors.Is(err, errFenced) {
		return kerr.NotLeaderForPartition
	}
	return kerr.KafkaStorageError
}

func fail(reqs []*appendReq, code *kerr.Error) {
	for _, r := range reqs {
		r.finish(appendResult{baseOffset: -1, logAppendTime: -1, logStart: -1, err: code})
	}
}

// failPartition fails one partition's requests of a flush. An idempotent
// producer's later batches for the same partition, already queued for the
// next flush, were accepted assuming these succeed: they fail too (the
// client retries them in order), so a retry can never land behind them.
func (w *walWriter) failPartition(reqs []*appendReq, code *kerr.Error) {
	if len(reqs) == 0 {
		return
	}
	p := reqs[0].p
	pids := map[int64]bool{}
	for _, r := range reqs {
		if r.idempotent() {
			pids[r.hdrs[0].ProducerID] = true
		}
	}
	var followers []*appendReq
	if len(pids) > 0 {
		followers = w.unqueue(func(q *appendReq) bool {
			return q.p == p && q.idempotent() && pids[q.hdrs[0].ProducerID]
		})
	}
	all := append(append([]*appendReq(nil), reqs...), followers...)
	p.settlePending(all, true)
	fail(all, code)
}
