package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch v4-v16. Full and incremental fetch sessions (KIP-227), topic ids
// from v13, long polling on MaxWaitMillis/MinBytes woken by every commit,
// current-leader-epoch fencing (KIP-320), and KIP-74 size limits. Data comes
// from the tail cache or ranged GETs (readcache.go). There are no
// transactions yet, so the last stable offset is the high watermark.
func init() { register(kmsg.Fetch, 4, 16, handleFetch) }

func handleFetch(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.FetchRequest)
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	return func() kmsg.Response { return c.b.fetch(req, deadline) }, nil
}

func (b *Broker) fetch(req *kmsg.FetchRequest, deadline time.Time) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(req.Version)
	useIDs := req.Version >= 13

	// Resolve the set of partitions to read: the request's, or the
	// session's after applying the request's changes.
	var (
		session *fetchSession
		parts   []*sessionPart
		full    = true
	)
	reqParts := func() []*sessionPart {
		var out []*sessionPart
		for _, rt := range req.Topics {
			name := rt.Topic
			if useIDs {
				if t := b.topics.getByID(rt.TopicID); t != nil {
					name = t.name
				}
			}
			for _, rp := range rt.Partitions {
				out = append(out, &sessionPart{
					key: sessionPartKey{name, rp.Partition}, topicID: rt.TopicID,
					fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch,
				})
			}
		}
		return out
	}
	switch {
	case req.SessionEpoch == -1: // sessionless full fetch; closes a named session
		if req.SessionID != 0 {
			b.sessions.remove(req.SessionID)
		}
		parts = reqParts()
	case req.SessionEpoch == 0: // new session, full fetch
		if req.SessionID != 0 {
			b.sessions.remove(req.SessionID)
		}
		parts = reqParts()
		if session = b.sessions.create(); session != nil {
			session.mu.Lock()
			for _, p := range parts {
				session.upsert(*p)
			}
			parts = session.parts
			resp.SessionID = session.id
		}
	default: // incremental
		session = b.sessions.get(req.SessionID)
		if session == nil {
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
			return resp
		}
		session.mu.Lock()
		if req.SessionEpoch != session.epoch {
			session.mu.Unlock()
			resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
			return resp
		}
		for _, ft := range req.ForgottenTopics {
			name := ft.Topic
			if useIDs {
				if t := b.topics.getByID(ft.TopicID); t != nil {
					name = t.name
				}
			}
			for _, p := range ft.Partitions {
				session.forget(sessionPartKey{name, p})
			}
		}
		for _, p := range reqParts() {
			session.upsert(*p)
		}
		parts = session.parts
		resp.SessionID = session.id
		full = false
	}
	if session != nil {
		defer func() {
			session.epoch++
			if session.epoch <= 0 {
				session.epoch = 1
			}
			session.mu.Unlock()
		}()
	}

	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(30*time.Second))
	defer cancel()
	for {
		wake := b.notify.wait()
		results, total, urgent := b.readParts(ctx, req, parts, full)
		expired := !time.Now().Before(deadline)
		if total >= int(req.MinBytes) || urgent || expired || b.isClosing() {
			b.fillFetchResponse(resp, req, results, useIDs)
			if session != nil {
				for _, r := range results {
					r.sp.sentOnce, r.sp.sentHW, r.sp.sentLogStart = true, r.hw, r.logStart
				}
			}
			return resp
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
		case <-timer.C:
		case <-b.closing:
		}
		timer.Stop()
	}
}

func (b *Broker) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

type fetchResult struct {
	sp       *sessionPart
	code     int16
	hw       int64
	logStart int64
	records  []byte
}

// readParts reads every partition once. urgent means an error is worth
// returning at once rather than waiting for MinBytes.
func (b *Broker) readParts(ctx context.Context, req *kmsg.FetchRequest, parts []*sessionPart, full bool) ([]fetchResult, int, bool) {
	var (
		results []fetchResult
		total   int
		urgent  bool
	)
	maxTotal := int(req.MaxBytes)
	if maxTotal <= 0 {
		maxTotal = 50 << 20
	}
	for _, sp := range parts {
		r := fetchResult{sp: sp, hw: -1, logStart: -1}
		t := b.topics.get(sp.key.topic)
		var p *partition
		if t != nil {
			p = t.partition(sp.key.partition)
		}
		switch {
		case t == nil && req.Version >= 13:
			r.code = kerr.UnknownTopicID.Code
		case p == nil:
			r.code = kerr.UnknownTopicOrPartition.Code
		default:
			st := p.status()
			r.hw, r.logStart = st.hw, st.logStart
			switch {
			case st.deleted:
				r.code = kerr.UnknownTopicOrPartition.Code
			case !st.leader:
				r.code = kerr.NotLeaderForPartition.Code
			case sp.leaderEpoch >= 0 && sp.leaderEpoch < st.epoch:
				r.code = kerr.FencedLeaderEpoch.Code
			case sp.leaderEpoch > st.epoch:
				r.code = kerr.UnknownLeaderEpoch.Code
			default:
				limit := int(sp.maxBytes)
				if rem := maxTotal - total; rem < limit {
					limit = rem
				}
				if limit <= 0 && total > 0 {
					break
				}
				data, err := p.read(ctx, st, sp.fetchOffset, max(limit, 1))
				switch {
				case errors.Is(err, errOffsetOutOfRange):
					r.code = kerr.OffsetOutOfRange.Code
				case err != nil:
					b.log.Warn("fetch read failed", "topic", sp.key.topic, "partition", sp.key.partition, "offset", sp.fetchOffset, "err", err)
					r.code = kerr.KafkaStorageError.Code
				default:
					r.records = data
					total += len(data)
					p.bytesOut.Add(int64(len(data)))
				}
			}
		}
		if r.code != 0 {
			urgent = true
		}
		if !full && r.code == 0 && len(r.records) == 0 && sp.sentOnce && r.hw == sp.sentHW && r.logStart == sp.sentLogStart {
			continue // nothing new for an incremental response
		}
		results = append(results, r)
	}
	return results, total, urgent
}

func (b *Broker) fillFetchResponse(resp *kmsg.FetchResponse, req *kmsg.FetchRequest, results []fetchResult, useIDs bool) {
	var last *kmsg.FetchResponseTopic
	for _, r := range results {
		if last == nil || last.Topic != r.sp.key.topic || (useIDs && last.TopicID != r.sp.topicID) {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = r.sp.key.topic
			rt.TopicID = r.sp.topicID
			resp.Topics = append(resp.Topics, rt)
			last = &resp.Topics[len(resp.Topics)-1]
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = r.sp.key.partition
		rp.ErrorCode = r.code
		rp.HighWatermark = r.hw
		rp.LastStableOffset = r.hw
		rp.LogStartOffset = r.logStart
		rp.PreferredReadReplica = -1
		rp.RecordBatches = r.records
		if rp.RecordBatches == nil {
			rp.RecordBatches = []byte{} // null would be an invalid MessageSetSize to librdkafka
		}
		if req.IsolationLevel == 1 {
			rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		b.m.fetchedBytes.Add(float64(len(r.records)))
		last.Partitions = append(last.Partitions, rp)
	}
}
