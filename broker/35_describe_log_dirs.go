package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs v0-v4: floe has no log directories; it reports one,
// named for the object store, holding every partition this broker leads,
// with each partition's size as the object-store bytes of its live segments.
func init() { register(kmsg.DescribeLogDirs, 0, 4, handleDescribeLogDirs) }

const objectStoreLogDir = "object-store"

func handleDescribeLogDirs(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	resp.SetVersion(req.Version)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = objectStoreLogDir
	dir.TotalBytes, dir.UsableBytes = -1, -1
	want := map[string]map[int32]bool{}
	for _, rt := range req.Topics {
		want[rt.Topic] = map[int32]bool{}
		for _, p := range rt.Partitions {
			want[rt.Topic][p] = true
		}
	}
	for _, t := range c.b.topics.all() {
		if req.Topics != nil && want[t.name] == nil {
			continue
		}
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = t.name
		for _, p := range t.partitions() {
			if req.Topics != nil && !want[t.name][p.id] {
				continue
			}
			ps := p.status()
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = p.id
			for _, s := range ps.segs {
				if s.Last >= ps.logStart {
					dp.Size += s.Len
				}
			}
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return immediate(resp), nil
}
