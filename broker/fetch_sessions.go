package broker

import (
	"sync"
)

// fetchSessions holds incremental fetch sessions (KIP-227): the partitions a
// client fetches, kept between requests so it sends only what changed and
// gets back only partitions with news.
type fetchSessions struct {
	mu       sync.Mutex
	max      int
	nextID   int32
	sessions map[int32]*fetchSession
}

type sessionPartKey struct {
	topic     string
	partition int32
}

type sessionPart struct {
	key         sessionPartKey
	topicID     [16]byte
	fetchOffset int64
	maxBytes    int32
	leaderEpoch int32
	// last values sent, to decide whether an incremental response includes it
	sentHW, sentLogStart int64
	sentOnce             bool
}

type fetchSession struct {
	mu    sync.Mutex
	id    int32
	epoch int32 // the epoch the next request must carry (after the current one is answered)
	parts []*sessionPart
	index map[sessionPartKey]*sessionPart
}

func newFetchSessions(max int) *fetchSessions {
	return &fetchSessions{max: max, nextID: 1, sessions: map[int32]*fetchSession{}}
}

// create starts a session, evicting the oldest one when full. It returns
// nil when sessions are disabled.
func (s *fetchSessions) create() *fetchSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max <= 0 {
		return nil
	}
	if len(s.sessions) >= s.max {
		oldest := int32(-1)
		for id := range s.sessions {
			if oldest == -1 || id < oldest {
				oldest = id
			}
		}
		delete(s.sessions, oldest)
	}
	id := s.nextID
	s.nextID++
	if s.nextID <= 0 {
		s.nextID = 1
	}
	// epoch becomes 1 when the creating (epoch 0) fetch is answered.
	fs := &fetchSession{id: id, epoch: 0, index: map[sessionPartKey]*sessionPart{}}
	s.sessions[id] = fs
	return fs
}

func (s *fetchSessions) get(id int32) *fetchSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *fetchSessions) remove(id int32) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

func (fs *fetchSession) upsert(sp sessionPart) {
	if cur, ok := fs.index[sp.key]; ok {
		cur.fetchOffset, cur.maxBytes, cur.leaderEpoch, cur.topicID = sp.fetchOffset, sp.maxBytes, sp.leaderEpoch, sp.topicID
		// An explicit re-request is always answered.
		cur.sentOnce = false
		return
	}
	p := sp
	fs.parts = append(fs.parts, &p)
	fs.index[sp.key] = &p
}

func (fs *fetchSession) forget(k sessionPartKey) {
	if _, ok := fs.index[k]; !ok {
		return
	}
	delete(fs.index, k)
	for i, p := range fs.parts {
		if p.key == k {
			fs.parts = append(fs.parts[:i], fs.parts[i+1:]...)
			break
		}
	}
}
