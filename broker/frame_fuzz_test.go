package broker

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzParseFrame feeds arbitrary request frames to the decoder that sits
// on every connection: it must return an error or a request, never panic.
func FuzzParseFrame(f *testing.F) {
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	seed := func(r kmsg.Request) {
		full := formatter.AppendRequest(nil, r, 7)
		f.Add(full[4:]) // without the size prefix, as the read loop hands it over
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	seed(md)
	pr := kmsg.NewPtrProduceRequest()
	pr.SetVersion(9)
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10}
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	seed(pr)
	fr := kmsg.NewPtrFetchRequest()
	fr.SetVersion(13)
	seed(fr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	seed(av)
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 255, 255})
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := parseFrame(frame)
		if err == nil && p.req == nil {
			t.Fatal("no error and no request")
		}
		if err == nil {
			// A decoded request re-encodes without panicking.
			_ = p.req.AppendTo(nil)
			if binary.BigEndian.Uint16(frame) != uint16(p.key) {
				t.Fatal("key mismatch")
			}
		}
	})
}
