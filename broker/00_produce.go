package broker

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/kbatch"
)

// Produce v0-v11, record batch format v2 only: v0-v2 requests (message
// sets v0/v1) get UNSUPPORTED_FOR_MESSAGE_FORMAT, but the versions are
// advertised because librdkafka (before 2.12) only compresses gzip, snappy
// and lz4 when the broker lists Produce v0. Each partition's batches are
// validated (framing, CRC, record count, records of uncompressed batches)
// and queued for the next flush on the read loop, so pipelined requests keep
// their order; the response waits until the flush's object is in object
// storage and its metadata is committed (DESIGN invariant 1). acks=0 gets no
// response at all.
func init() { register(kmsg.Produce, 0, 11, handleProduce) }

type produceWait struct {
	topic, part int
	req         *appendReq
	dup         bool // a retried batch answered from the original's result
}

func handleProduce(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.SetVersion(req.Version)
	var waits []produceWait
	badAcks := req.Acks != 0 && req.Acks != 1 && req.Acks != -1
	for ti, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		t := c.b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			r, code, msg := c.b.prepareAppend(t, rp.Partition, rp.Records)
			switch {
			case badAcks:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
			case code != nil:
				sp.ErrorCode = code.Code
				if msg != "" {
					sp.ErrorMessage = &msg
				}
			default:
				res, err := c.b.appendBatches(r)
				switch {
				case err != nil:
					sp.ErrorCode = err.Code
				case res.dupOffset >= 0:
					sp.BaseOffset, sp.LogStartOffset = res.dupOffset, r.p.status().logStart
				case res.waitFor != nil:
					waits = append(waits, produceWait{topic: ti, part: len(st.Partitions), req: res.waitFor, dup: true})
				default:
					waits = append(waits, produceWait{topic: ti, part: len(st.Partitions), req: r})
					c.b.m.producedBytes.Add(float64(r.bytes))
					r.p.bytesIn.Add(int64(r.bytes))
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(waits) > 0 {
		if c.producing.Add(1) >= clientInFlightCap {
			c.b.wal.urgent()
		}
	}
	// The request's timeout bounds the wait for durability, as in Kafka:
	// past it the partition answers REQUEST_TIMED_OUT (the batch may still
	// land; idempotent producers' retries are deduplicated).
	var (
		timer   *time.Timer
		expired <-chan time.Time // nil: no timeout, wait as long as it takes
	)
	if req.TimeoutMillis > 0 && len(waits) > 0 {
		timer = time.NewTimer(time.Duration(req.TimeoutMillis) * time.Millisecond)
		expired = timer.C
	}
	return func() kmsg.Response {
		if len(waits) > 0 {
			defer c.producing.Add(-1)
		}
		if timer != nil {
			defer timer.Stop()
		}
		timedOut := false
		for _, w := range waits {
			sp := &resp.Topics[w.topic].Partitions[w.part]
			if !timedOut {
				select {
				case <-w.req.done:
				case <-expired:
					timedOut = true
				}
			}
			if timedOut {
				select {
				case <-w.req.done:
				default:
					sp.ErrorCode = kerr.RequestTimedOut.Code
					continue
				}
			}
			res := w.req.result
			if res.err != nil {
				sp.ErrorCode = res.err.Code
				continue
			}
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.baseOffset, res.logAppendTime, res.logStart
			if !w.dup {
				for _, h := range w.req.hdrs {
					c.b.m.producedRecs.Add(float64(h.NumRecords))
				}
			}
		}
		if req.Acks == 0 {
			return nil
		}
		return resp
	}, nil
}

// prepareAppend checks that this broker leads the partition and that the
// records are valid batches within max.message.bytes.
func (b *Broker) prepareAppend(t *topic, partition int32, records []byte) (*appendReq, *kerr.Error, string) {
	if t == nil {
		return nil, kerr.UnknownTopicOrPartition, ""
	}
	if isInternalTopic(t.name) {
		return nil, kerr.InvalidTopicException, "cannot append to internal topic " + t.name
	}
	p := t.partition(partition)
	if p == nil {
		return nil, kerr.UnknownTopicOrPartition, ""
	}
	if st := p.status(); st.deleted {
		return nil, kerr.UnknownTopicOrPartition, ""
	} else if !st.leader {
		return nil, kerr.NotLeaderForPartition, ""
	}
	hdrs, batches, err := kbatch.Split(records)
	if err != nil {
		if errors.Is(err, kbatch.ErrMagic) {
			return nil, kerr.UnsupportedForMessageFormat, err.Error()
		}
		return nil, kerr.CorruptMessage, err.Error()
	}
	maxBytes := int(t.configInt("max.message.bytes"))
	for i, h := range hdrs {
		if len(batches[i]) > maxBytes {
			return nil, kerr.MessageTooLarge, "batch larger than max.message.bytes"
		}
		if h.Control() {
			return nil, kerr.InvalidRecord, "control batches are written by the broker, not producers"
		}
		if h.Transactional() {
			return nil, kerr.TransactionalIDAuthorizationFailed, "transactions are not supported yet"
		}
	}
	if len(hdrs) > 1 {
		pid := hdrs[0].ProducerID
		for _, h := range hdrs[1:] {
			if (pid >= 0 || h.ProducerID >= 0) && h.ProducerID != pid {
				return nil, kerr.InvalidRecord, "an idempotent produce carries one producer's batches"
			}
		}
	}
	return newAppendReq(p, hdrs, batches, len(records)), nil, ""
}

type appendOutcome struct {
	dupOffset int64      // >= 0: the batch was already committed at this offset
	waitFor   *appendReq // the batch repeats one still in flight
}

// appendBatches checks idempotent sequences and queues r for the next
// flush. The sequence check and the enqueue happen under the partition lock
// so a concurrent flush failure cannot reorder them.
func (b *Broker) appendBatches(r *appendReq) (appendOutcome, *kerr.Error) {
	out := appendOutcome{dupOffset: -1}
	b.wal.waitSpace()
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.leader {
		return out, kerr.NotLeaderForPartition
	}
	if r.idempotent() {
		dup, waitFor, code := p.checkSequence(r)
		switch {
		case code != nil:
			return out, code
		case dup >= 0:
			out.dupOffset = dup
			return out, nil
		case waitFor != nil:
			out.waitFor = waitFor
			return out, nil
		}
	}
	if err := b.wal.append(r); err != nil {
		if r.idempotent() {
			// Undo the pending sequence move; p.mu is held, so inline.
			delete(p.pending, r.hdrs[0].ProducerID)
		}
		return out, kerr.NotLeaderForPartition
	}
	return out, nil
}
