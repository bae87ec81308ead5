package tabletopic

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/kbatch"
	"github.com/floe-io/floe/tabletopic/convert"
)

var (
	// errNotLeader ends a worker whose partition moved to another node.
	errNotLeader = errors.New("no longer the partition leader")
	// errBlocked stops a table on a bad record under errors.tolerance=none.
	errBlocked = errors.New("conversion stopped on an invalid record (table.topic.errors.tolerance=none)")
	// errStop ends a batch walk early; it never leaves the worker.
	errStop = errors.New("stop")
)

// retryableError is a failure that left the worker's state consistent (the
// record that failed was not added), so the worker may retry in place.
type retryableError struct{ err error }

func (e retryableError) Error() string { return e.err.Error() }
func (e retryableError) Unwrap() error { return e.err }

// checkpoint is what a worker hands its coordinator each round: the files
// it closed and the next offset to convert. Everything below end that
// belongs in the table is in the files of this or earlier checkpoints.
type checkpoint struct {
	partition int32
	end       int64
	data      []*writtenFile
	dlq       []*writtenFile
	// firstTimestampMs is the timestamp of the first record converted since
	// the previous checkpoint (0: none), for lag in seconds.
	firstTimestampMs int64
	// blocked is set when tolerance=none stopped the partition at end.
	blocked error
	// skipped counts records retention deleted before conversion.
	skipped int64
	// dead are the rejected records for the dead-letter topic, if any.
	dead []deadRecord
}

// worker converts one partition: it reads committed batches from next,
// converts each record, and streams the rows into Parquet files.
type worker struct {
	r         *tableRunner
	partition int32
	// next is the next offset to convert.
	next int64
	// dlqFrom: bad records below it are already in the dead-letter table
	// (committed by an earlier round whose data commit did not land).
	dlqFrom int64

	conv          converter
	convFirst     int64 // offset of the first row buffered in conv
	data          dataWriter
	dlqRows       *convert.DeadLetter
	dlqFirst      int64
	dlq           *rollingWriter
	dead          []deadRecord // for the dead-letter topic (dlqtopic.go)
	blocked       error
	skippedRecord int64
	// resumed: the table holds an offset for the partition, so records
	// found deleted below it were lost to retention (a backfill of a new
	// table just starts at the log start).
	resumed bool
	// firstTS is the timestamp of the first record converted since the
	// last checkpoint (0: none); the coordinator reads it for lag.
	firstTS atomic.Int64

	headers []convert.Header // reused for each record's headers

	req  chan chan *checkpoint
	done chan struct{}
	err  error // why run returned; read after done is closed

	hw       atomic.Int64
	logStart atomic.Int64
}

// newWorker makes partition's worker; data is its rows' writer (see
// tableRunner.dataWriter).
func newWorker(r *tableRunner, partition int32, next, dlqFrom int64, conv converter, data dataWriter) *worker {
	w := &worker{
		r:         r,
		partition: partition,
		next:      next,
		dlqFrom:   dlqFrom,
		conv:      conv,
		data:      data,
		req:       make(chan chan *checkpoint),
		done:      make(chan struct{}),
	}
	w.hw.Store(-1)
	w.logStart.Store(-1)
	return w
}

// run converts until ctx ends or a failure that needs recovery.
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	w.err = w.loop(ctx)
	w.data.abort()
	if w.dlq != nil {
		w.dlq.abort()
	}
	if w.dlqRows != nil {
		w.dlqRows.Release()
	}
	w.conv.Release()
}

func (w *worker) loop(ctx context.Context) error {
	log := w.r.svc.log
	topic := w.r.topic.Name
	backoff := time.Duration(0)
	for {
		if w.blocked != nil {
			// Stay put, answering checkpoints, until the table stops.
			select {
			case rq := <-w.req:
				if err := w.answer(rq); err != nil {
					return err
				}
			case <-ctx.Done():
				return nil
			}
			continue
		}
		notify := log.DataNotify()
		batches, hw, logStart, err := log.ReadCommitted(ctx, topic, w.partition, w.next, w.r.svc.cfg.ReadBytes)
		if hw >= 0 {
			w.hw.Store(hw)
		}
		if logStart >= 0 {
			w.logStart.Store(logStart)
		}
		if logStart >= 0 && w.next < logStart && ctx.Err() == nil {
			w.skipTo(logStart)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !log.Leads(topic, w.partition) {
				return errNotLeader
			}
			if hw >= 0 && w.next > hw {
				return fmt.Errorf("partition %d: the table holds offsets up to %d but the log ends at %d", w.partition, w.next, hw)
			}
			if err := w.wait(ctx, &backoff, fmt.Errorf("read partition %d at %d: %w", w.partition, w.next, err)); err != nil {
				return err
			}
			continue
		}
		if len(batches) == 0 {
			select {
			case <-notify:
			case rq := <-w.req:
				if err := w.answer(rq); err != nil {
					return err
				}
			case <-ctx.Done():
				return nil
			}
			continue
		}
		if err := w.process(ctx, batches); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var re retryableError
			if !errors.As(err, &re) {
				return err
			}
			if err := w.wait(ctx, &backoff, err); err != nil {
				return err
			}
			continue
		}
		backoff = 0
		select {
		case rq := <-w.req:
			if err := w.answer(rq); err != nil {
				return err
			}
		default:
		}
	}
}

// skipTo moves past records the log no longer holds.
func (w *worker) skipTo(logStart int64) {
	if w.resumed {
		// Retention deleted records nobody converted. Say so loudly;
		// there is nothing left to convert them from.
		w.r.svc.cfg.Logger.Warn("records deleted from the log (retention, DeleteRecords) before conversion",
			"table", w.r.name, "partition", w.partition, "from", w.next, "to", logStart)
		w.skippedRecord += logStart - w.next
	}
	w.next = logStart
}

// wait sleeps before a retry, answering checkpoints meanwhile.
func (w *worker) wait(ctx context.Context, backoff *time.Duration, cause error) error {
	*backoff = min(max(2**backoff, 100*time.Millisecond), w.r.svc.cfg.MaxRetryBackoff)
	w.r.noteWorkerError(cause)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case rq := <-w.req:
			if err := w.answer(rq); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// process converts the records of batches at or past next.
func (w *worker) process(ctx context.Context, batches []byte) error {
	var perr error
	err := kbatch.Iterate(batches, func(h kbatch.Header, batch []byte) bool {
		var rec convert.Record
		if h.LastOffset() < w.next {
			return true
		}
		err := kbatch.Records(batch, func(offset, ts int64, kr kbatch.Record) error {
			if offset < w.next {
				return nil
			}
			rec, w.headers = toRecord(w.partition, offset, ts, &kr, w.headers)
			return w.convert(ctx, rec)
		})
		switch {
		case err == nil:
		case errors.Is(err, errStop):
			return false
		case isDecodeError(err):
			// The stored batch cannot be decoded (a zip bomb or a codec
			// bug): its remaining records are one bad "record" carrying
			// the whole batch, so nothing is silently skipped.
			bad := convert.Record{Partition: w.partition, Offset: w.next, TimestampMs: h.MaxTimestamp, Value: batch}
			cause := fmt.Errorf("%w: undecodable batch at offsets %d-%d: %w", errInvalidRecord, h.BaseOffset, h.LastOffset(), err)
			if ierr := w.invalid(ctx, bad, cause); ierr != nil {
				if !errors.Is(ierr, errStop) {
					perr = ierr
				}
				return false
			}
		default:
			perr = err
			return false
		}
		// Control batches and compaction gaps move next past them too.
		w.next = h.LastOffset() + 1
		if err := w.maybeFlush(); err != nil {
			perr = err
			return false
		}
		return true
	})
	if perr != nil {
		return perr
	}
	if err != nil {
		// A torn read is the log's fault, not the data's: retry it.
		return retryableError{fmt.Errorf("partition %d: %w", w.partition, err)}
	}
	return nil
}

// isDecodeError tells a batch kbatch cannot decode from our own errors.
func isDecodeError(err error) bool {
	for _, s := range []error{kbatch.ErrDecompress, kbatch.ErrTooLarge, kbatch.ErrRecords, kbatch.ErrCRC, kbatch.ErrLength, kbatch.ErrCompression, kbatch.ErrRecordCount, kbatch.ErrMagic, kbatch.ErrShort} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// convert adds one record to the table's rows or routes it per tolerance.
func (w *worker) convert(ctx context.Context, rec convert.Record) error {
	for attempt := 0; ; attempt++ {
		err := w.conv.Add(ctx, rec)
		switch {
		case err == nil:
			if w.conv.Rows() == 1 {
				w.convFirst = rec.Offset
			}
			w.firstTS.CompareAndSwap(0, max(rec.TimestampMs, 1))
			w.next = rec.Offset + 1
			return nil
		case errors.Is(err, errSchemaChange) && attempt < 3:
			if col := idColumnChanged(w.r.cfg.idColumns, w.conv.Schema(), w.conv.ProposedSchema()); col != "" {
				return w.invalid(ctx, rec, fmt.Errorf("%w: the record's schema changes id column %s (type or nullability)", errInvalidRecord, col))
			}
			if err := w.evolve(ctx); err != nil {
				return err
			}
		case errors.Is(err, errInvalidRecord), errors.Is(err, errSchemaChange),
			w.r.cfg.tolerance == toleranceAll:
			return w.invalid(ctx, rec, err)
		default:
			return retryableError{fmt.Errorf("partition %d offset %d: %w", w.partition, rec.Offset, err)}
		}
	}
}

// evolve commits the schema the converter proposes and moves to it. The
// rows converted so far go to a file of the old schema first.
func (w *worker) evolve(ctx context.Context) error {
	if err := w.flushData(); err != nil {
		return err
	}
	if err := w.data.closeCurrent(); err != nil {
		return err
	}
	committed, err := w.r.evolveSchema(ctx, w.conv.ProposedSchema())
	if err != nil {
		return fmt.Errorf("evolve schema: %w", err)
	}
	if pw, ok := w.data.(*partitionedWriter); ok {
		// iceberg-go writes against the table's schema: it must know the
		// new columns.
		pw.useTable(committed)
	}
	return w.conv.Evolve(committed.Schema())
}

// invalid handles a record the converter rejected.
func (w *worker) invalid(ctx context.Context, rec convert.Record, cause error) error {
	if w.r.cfg.tolerance == toleranceNone {
		w.blocked = fmt.Errorf("%w: partition %d offset %d: %w", errBlocked, w.partition, rec.Offset, cause)
		return errStop
	}
	if rec.Offset >= w.dlqFrom {
		if w.dlqRows == nil {
			sink, sc, err := w.r.deadLetterSink(ctx)
			if err != nil {
				return retryableError{fmt.Errorf("dead-letter table: %w", err)}
			}
			dl, err := convert.NewDeadLetter(sc, nil)
			if err != nil {
				return err
			}
			w.dlqRows = dl
			w.dlq = &rollingWriter{sink: sink, partition: w.partition, target: w.r.cfg.targetFileBytes}
		}
		if w.dlqRows.Rows() == 0 {
			w.dlqFirst = rec.Offset
		}
		w.dlqRows.Add(rec, cause)
		if w.r.cfg.dlqTopic != "" {
			w.dead = append(w.dead, newDeadRecord(w.r.topic, rec, cause))
		}
	}
	w.firstTS.CompareAndSwap(0, max(rec.TimestampMs, 1))
	w.next = rec.Offset + 1
	return nil
}

func (w *worker) maybeFlush() error {
	if w.conv.EstimatedBytes() >= w.r.svc.cfg.FlushBytes {
		if err := w.flushData(); err != nil {
			return err
		}
	}
	if w.dlqRows != nil && w.dlqRows.EstimatedBytes() >= w.r.svc.cfg.FlushBytes {
		return w.flushDLQ()
	}
	return nil
}

func (w *worker) flushData() error {
	rec := w.conv.Flush()
	if rec == nil {
		return nil
	}
	defer rec.Release()
	return w.data.write(rec, w.conv.Schema(), w.convFirst)
}

func (w *worker) flushDLQ() error {
	if w.dlqRows == nil {
		return nil
	}
	rec := w.dlqRows.Flush()
	if rec == nil {
		return nil
	}
	defer rec.Release()
	return w.dlq.write(rec, w.dlqRows.Schema(), w.dlqFirst)
}

// answer closes the open files and replies with a checkpoint.
func (w *worker) answer(rq chan *checkpoint) error {
	if err := w.flushData(); err != nil {
		return err
	}
	if err := w.data.closeCurrent(); err != nil {
		return err
	}
	if re, ok := w.data.(roundEnder); ok {
		if err := re.endRound(); err != nil {
			return err
		}
	}
	cp := &checkpoint{
		partition: w.partition, end: w.next, data: w.data.take(), blocked: w.blocked,
		firstTimestampMs: w.firstTS.Swap(0), skipped: w.skippedRecord, dead: w.dead,
	}
	w.dead = nil
	w.skippedRecord = 0
	if w.dlq != nil {
		if err := w.flushDLQ(); err != nil {
			return err
		}
		if err := w.dlq.closeCurrent(); err != nil {
			return err
		}
		cp.dlq = w.dlq.take()
	}
	rq <- cp // buffered
	return nil
}

// checkpoint asks the worker for a checkpoint; it fails if the worker
// ended (its error says why).
func (w *worker) checkpoint(ctx context.Context) (*checkpoint, error) {
	rq := make(chan *checkpoint, 1)
	select {
	case w.req <- rq:
	case <-w.done:
		return nil, w.exitErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case cp := <-rq:
		return cp, nil
	case <-w.done:
		// It may have answered just before ending.
		select {
		case cp := <-rq:
			return cp, nil
		default:
		}
		return nil, w.exitErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *worker) exitErr() error {
	if w.err != nil {
		return w.err
	}
	return fmt.Errorf("partition %d worker stopped", w.partition)
}

func (w *worker) firstTSSnapshot() int64 { return w.firstTS.Load() }
