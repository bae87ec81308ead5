package broker_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// wireConn sends requests at exactly the version asked for, which a real
// client (negotiating the highest common version) would not.
type wireConn struct {
	t    *testing.T
	nc   net.Conn
	r    *bufio.Reader
	corr int32
}

func dialWire(t *testing.T, addr string) *wireConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &wireConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (w *wireConn) do(req kmsg.Request, version int16) kmsg.Response {
	w.t.Helper()
	req.SetVersion(version)
	w.corr++
	buf := []byte{0, 0, 0, 0}
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(version))
	buf = binary.BigEndian.AppendUint32(buf, uint32(w.corr))
	buf = binary.BigEndian.AppendUint16(buf, uint16(len("wire")))
	buf = append(buf, "wire"...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if err := w.nc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.nc.Write(buf); err != nil {
		w.t.Fatalf("write %s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(w.r, size[:]); err != nil {
		w.t.Fatalf("read %s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(w.r, body); err != nil {
		w.t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != w.corr {
		w.t.Fatalf("correlation id %d, want %d", corr, w.corr)
	}
	body = body[4:]
	if req.IsFlexible() {
		body = body[1:] // empty header tags
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		w.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return resp
}

func TestGroupAPIsAcrossVersions(t *testing.T) {
	addr, _ := startGroupsBroker(t, metastoretest.OpenEmbedded(t), memory.New(), "127.0.0.1:0")
	adm := groupsAdmin(t, addr)
	createGroupsTopic(t, adm, "wire-topic", 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	details, err := adm.ListTopics(ctx, "wire-topic")
	if err != nil {
		t.Fatal(err)
	}
	topicID := [16]byte(details["wire-topic"].ID)
	host, port, _ := net.SplitHostPort(addr)
	w := dialWire(t, addr)

	t.Run("FindCoordinator", func(t *testing.T) {
		for v := int16(0); v <= 3; v++ {
			for _, kt := range []int8{0, 1} {
				if v == 0 && kt == 1 {
					continue
				}
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.CoordinatorKey, req.CoordinatorType = "g", kt
				resp := w.do(req, v).(*kmsg.FindCoordinatorResponse)
				if resp.ErrorCode != 0 || resp.Host != host || strconv.Itoa(int(resp.Port)) != port {
					t.Fatalf("v%d type %d: %+v", v, kt, resp)
				}
			}
		}
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey, req.CoordinatorType = "g", 2
		if resp := w.do(req, 3).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("key type 2: %d", resp.ErrorCode)
		}
		for _, v := range []int16{4, 5} {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKeys, req.CoordinatorType = []string{"a", "b"}, 1
			resp := w.do(req, v).(*kmsg.FindCoordinatorResponse)
			if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "b" || resp.Coordinators[1].ErrorCode != 0 || resp.Coordinators[1].Host != host {
				t.Fatalf("v%d: %+v", v, resp)
			}
		}
	})

	t.Run("old-version group lifecycle", func(t *testing.T) {
		join := kmsg.NewPtrJoinGroupRequest()
		join.Group, join.SessionTimeoutMillis, join.ProtocolType = "old", 10000, "consumer"
		join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
		jr := w.do(join, 0).(*kmsg.JoinGroupResponse)
		if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
			t.Fatalf("join v0: %+v", jr)
		}
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.Generation, sync.MemberID = "old", jr.Generation, jr.MemberID
		sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jr.MemberID, MemberAssignment: []byte("mine")}}
		if sr := w.do(sync, 0).(*kmsg.SyncGroupResponse); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "mine" {
			t.Fatalf("sync v0: %+v", sr)
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.Generation, hb.MemberID = "old", jr.Generation, jr.MemberID
		if hr := w.do(hb, 0).(*kmsg.HeartbeatResponse); hr.ErrorCode != 0 {
			t.Fatalf("heartbeat v0: %d", hr.ErrorCode)
		}
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group, commit.Generation, commit.MemberID = "old", jr.Generation, jr.MemberID
		commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "wire-topic", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 17}}}}
		if cr := w.do(commit, 2).(*kmsg.OffsetCommitResponse); cr.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit v2: %+v", cr)
		}
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Group = "old"
		fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "wire-topic", Partitions: []int32{0, 1}}}
		fr := w.do(fetch, 0).(*kmsg.OffsetFetchResponse)
		if fr.Topics[0].Partitions[0].Offset != -1 || fr.Topics[0].Partitions[1].Offset != 17 {
			t.Fatalf("fetch v0: %+v", fr)
		}
		desc := kmsg.NewPtrDescribeGroupsRequest()
		desc.Groups = []string{"old"}
		if dr := w.do(desc, 0).(*kmsg.DescribeGroupsResponse); dr.Groups[0].State != "Stable" || string(dr.Groups[0].Members[0].MemberAssignment) != "mine" {
			t.Fatalf("describe v0: %+v", dr)
		}
		if lr := w.do(kmsg.NewPtrListGroupsRequest(), 0).(*kmsg.ListGroupsResponse); len(lr.Groups) != 1 || lr.Groups[0].ProtocolType != "consumer" {
			t.Fatalf("list v0: %+v", lr)
		}
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{"old"}
		if dr := w.do(del, 0).(*kmsg.DeleteGroupsResponse); dr.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code {
			t.Fatalf("delete v0 of a live group: %+v", dr)
		}
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group, leave.MemberID = "old", jr.MemberID
		if lr := w.do(leave, 0).(*kmsg.LeaveGroupResponse); lr.ErrorCode != 0 {
			t.Fatalf("leave v0: %d", lr.ErrorCode)
		}
		odel := kmsg.NewPtrOffsetDeleteRequest()
		odel.Group = "old"
		odel.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "wire-topic", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}}}
		if or := w.do(odel, 0).(*kmsg.OffsetDeleteResponse); or.ErrorCode != 0 || or.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("offset delete v0: %+v", or)
		}
		if dr := w.do(del, 0).(*kmsg.DeleteGroupsResponse); dr.Groups[0].ErrorCode != 0 {
			t.Fatalf("delete v0 of an empty group: %+v", dr)
		}
	})

	t.Run("topic ids in OffsetCommit and OffsetFetch v10", func(t *testing.T) {
		unknown := [16]byte{1, 2, 3}
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group = "ids"
		commit.Topics = []kmsg.OffsetCommitRequestTopic{
			{TopicID: unknown, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}},
			{TopicID: topicID, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 33, LeaderEpoch: -1}}},
		}
		cr := w.do(commit, 10).(*kmsg.OffsetCommitResponse)
		if cr.Topics[0].TopicID != unknown || cr.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code ||
			cr.Topics[1].TopicID != topicID || cr.Topics[1].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit v10: %+v", cr)
		}
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Groups = []kmsg.OffsetFetchRequestGroup{
			{Group: "ids", Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: topicID, Partitions: []int32{0}}, {TopicID: unknown, Partitions: []int32{0}}}},
			{Group: "ids"},
		}
		fr := w.do(fetch, 10).(*kmsg.OffsetFetchResponse)
		g0, g1 := fr.Groups[0], fr.Groups[1]
		if g0.Topics[0].TopicID != topicID || g0.Topics[0].Partitions[0].Offset != 33 || g0.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
			t.Fatalf("fetch v10 by id: %+v", g0)
		}
		if len(g1.Topics) != 1 || g1.Topics[0].TopicID != topicID || g1.Topics[0].Partitions[0].Offset != 33 {
			t.Fatalf("fetch v10 of all topics: %+v", g1)
		}
		// The same offset by name at v9.
		fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "ids", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "wire-topic", Partitions: []int32{0}}}}}
		if fr := w.do(fetch, 9).(*kmsg.OffsetFetchResponse); fr.Groups[0].Topics[0].Partitions[0].Offset != 33 {
			t.Fatalf("fetch v9: %+v", fr)
		}
	})
}
