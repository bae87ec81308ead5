package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// Idempotent producers (KIP-98): per partition, the leader tracks each
// producer id's epoch and its last five committed batches (sequence range
// and offsets), so a retried batch is answered with its original offsets
// instead of being written twice, and a gap in sequences is refused with
// OUT_OF_ORDER_SEQUENCE_NUMBER. The committed part is stored in the
// partition record by the same transaction that commits the batches, so
// deduplication survives a restart or a leader change.

// maxProducerBatches is how many recent batches per producer are
// remembered, as in Kafka (max.in.flight.requests.per.connection <= 5).
const maxProducerBatches = 5

// producerBatch is one committed batch of an idempotent producer.
type producerBatch struct {
	FirstSeq   int32 `json:"f"`
	LastSeq    int32 `json:"l"`
	BaseOffset int64 `json:"o"`
}

// producerEntry is a producer's committed state in a partition record.
type producerEntry struct {
	Epoch     int16           `json:"e"`
	Batches   []producerBatch `json:"b"`
	LastWrite int64           `json:"t"` // ms; entries idle past producer.id.expiration are dropped
}

func (e *producerEntry) nextSeq() int32 {
	if len(e.Batches) == 0 {
		return 0
	}
	return e.Batches[len(e.Batches)-1].LastSeq + 1
}

// pendingProducer is what the leader has accepted for a producer but not
// yet committed: the next sequence it expects, and the queued batches
// (so a retry of one still in flight waits for it instead of duplicating).
type pendingProducer struct {
	epoch   int16
	nextSeq int32
	reqs    []*appendReq
}

// producerExpiryMs mirrors Kafka's producer.id.expiration.ms default (1 day).
const producerExpiryMs = 24 * 60 * 60 * 1000

// checkSequence decides what to do with an idempotent batch appended to p;
// p.mu must be held. It returns a duplicate's original base offset
// (dupOf >= 0), a request still in flight that the batch repeats (waitFor),
// or an error code; otherwise the batch is accepted and pending state moves.
func (p *partition) checkSequence(r *appendReq) (dupOf int64, waitFor *appendReq, code *kerr.Error) {
	h := r.hdrs[0]
	pid, epoch := h.ProducerID, h.ProducerEpoch
	first, last := h.BaseSequence, h.BaseSequence+h.NumRecords-1
	for _, more := range r.hdrs[1:] {
		if more.ProducerEpoch != epoch || more.BaseSequence != last+1 {
			return -1, nil, kerr.OutOfOrderSequenceNumber
		}
		last = more.BaseSequence + more.NumRecords - 1
	}
	committed, hasCommitted := p.producers[pid]
	pend := p.pending[pid]
	if pend == nil {
		pend = &pendingProducer{epoch: -1}
		if hasCommitted {
			pend.epoch, pend.nextSeq = committed.Epoch, committed.nextSeq()
		}
	}
	switch {
	case pend.epoch >= 0 && epoch < pend.epoch:
		return -1, nil, kerr.InvalidProducerEpoch
	case pend.epoch < 0 || epoch > pend.epoch:
		// A new producer, or a new epoch of one: sequences restart at 0.
		if first != 0 {
			if pend.epoch < 0 {
				return -1, nil, kerr.UnknownProducerID
			}
			return -1, nil, kerr.OutOfOrderSequenceNumber
		}
	default:
		if hasCommitted && committed.Epoch == epoch {
			for _, b := range committed.Batches {
				// As Kafka: a duplicate repeats a committed batch's whole range.
				if b.FirstSeq == first && b.LastSeq == h.BaseSequence+h.NumRecords-1 {
					return b.BaseOffset, nil, nil
				}
			}
		}
		for _, q := range pend.reqs {
			for _, qh := range q.hdrs {
				if qh.ProducerID == pid && qh.ProducerEpoch == epoch && qh.BaseSequence == first {
					return -1, q, nil
				}
			}
		}
		if first != pend.nextSeq {
			return -1, nil, kerr.OutOfOrderSequenceNumber
		}
	}
	pend.epoch, pend.nextSeq = epoch, last+1
	pend.reqs = append(pend.reqs, r)
	if p.pending == nil {
		p.pending = map[int64]*pendingProducer{}
	}
	p.pending[pid] = pend
	return -1, nil, nil
}

// commitProducers folds a committed flush's idempotent batches into the
// committed producer state (on a copy, which the flush stores). now is ms.
func commitProducers(cur map[int64]producerEntry, reqs []*appendReq, bases []int64, now int64) map[int64]producerEntry {
	next := make(map[int64]producerEntry, len(cur))
	for pid, e := range cur {
		if now-e.LastWrite < producerExpiryMs {
			next[pid] = e
		}
	}
	for i, r := range reqs {
		off := bases[i]
		for _, h := range r.hdrs {
			if h.ProducerID >= 0 {
				e := next[h.ProducerID]
				if e.Epoch != h.ProducerEpoch {
					e = producerEntry{Epoch: h.ProducerEpoch}
				}
				batches := append([]producerBatch(nil), e.Batches...)
				batches = append(batches, producerBatch{FirstSeq: h.BaseSequence, LastSeq: h.BaseSequence + h.NumRecords - 1, BaseOffset: off})
				if len(batches) > maxProducerBatches {
					batches = batches[len(batches)-maxProducerBatches:]
				}
				e.Batches, e.LastWrite = batches, now
				next[h.ProducerID] = e
			}
			off += int64(h.NumRecords)
		}
	}
	return next
}

// settlePending removes finished requests from the pending producer state.
// After a failure the producer's pending view resets to what is committed:
// the client retries from its first failed batch.
func (p *partition) settlePending(reqs []*appendReq, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := make(map[*appendReq]bool, len(reqs))
	for _, r := range reqs {
		done[r] = true
	}
	for pid, pend := range p.pending {
		keep := pend.reqs[:0]
		hit := false
		for _, q := range pend.reqs {
			if done[q] {
				hit = true
				continue
			}
			keep = append(keep, q)
		}
		pend.reqs = keep
		if failed && hit {
			// Later batches of this producer were accepted assuming the
			// failed ones; they are failed by the flusher too, so start over
			// from the committed state.
			delete(p.pending, pid)
			continue
		}
		if len(pend.reqs) == 0 {
			delete(p.pending, pid)
		}
	}
}
