package compat

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/testutil/tool"
)

// kcat splits its input on multi-byte delimiters, so binary keys and values
// go through unencoded as long as the delimiters occur in none of them
// (writeKcatInput checks). They are passed as raw bytes, not kcat's \xNN
// escapes, whose parser also eats hex letters that follow ("\xfdE").
const (
	kcatKeyDelim = "\xfc<floe-key/>\xfb"
	kcatMsgDelim = "\xfe<floe-record/>\xfd"
	// kcatFormat prints a header line with the lengths, then the exact
	// key and value bytes: %K and %S are -1 for null.
	kcatFormat = `%p %o %K %S\n%k%s\n`
)

// TestKcat produces the dataset with kcat (librdkafka) from a file in
// every codec, then reads it back with kcat and with franz-go.
func TestKcat(t *testing.T) {
	kcat := tool.Look(t, "kcat")
	ds := theDataset()
	input := filepath.Join(t.TempDir(), "records.kcat")
	if err := writeKcatInput(input, ds); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			c.createTopic(t, topic)
			runTool(t, c.ctx(t, produceTimeout), "", kcat, "-P", "-b", c.addr(), "-t", topic,
				"-K", kcatKeyDelim, "-D", kcatMsgDelim, "-l", input, "-z", codec,
				"-X", "topic.partitioner=murmur2_random",
				"-X", "acks=all",
				"-X", "linger.ms=5",
				// Fail instead of retrying: a retried batch could be
				// reordered, and an error is what we want to see.
				"-X", "message.send.max.retries=0")
			c.checkOffsets(t, topic, ds)

			out := runTool(t, c.ctx(t, consumeTimeout), "", kcat, "-C", "-b", c.addr(), "-t", topic,
				"-o", "beginning", "-e", "-q", "-f", kcatFormat, "-X", "check.crcs=true")
			recs, err := parseKcatOutput(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := ds.check(recs, false); err != nil {
				t.Fatalf("kcat consumer: %v", err)
			}
			c.checkFranzConsume(t, topic, codec, ds)
		})
	}
}

func writeKcatInput(path string, ds *dataset) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for n := range ds.keys {
		for _, b := range [][]byte{ds.keys[n], ds.values[n]} {
			if bytes.Contains(b, []byte(kcatKeyDelim)) || bytes.Contains(b, []byte(kcatMsgDelim)) {
				f.Close()
				return fmt.Errorf("record %d contains a kcat delimiter: pick others", n)
			}
		}
		w.Write(ds.keys[n])
		w.WriteString(kcatKeyDelim)
		w.Write(ds.values[n])
		w.WriteString(kcatMsgDelim)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseKcatOutput reads records printed with kcatFormat.
func parseKcatOutput(out []byte) ([]consumedRecord, error) {
	r := bufio.NewReader(bytes.NewReader(out))
	var recs []consumedRecord
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("kcat output, record %d: %w", len(recs), err)
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			return nil, fmt.Errorf("kcat output, record %d: header %q", len(recs), line)
		}
		var nums [4]int64
		for i, f := range fields {
			if nums[i], err = strconv.ParseInt(f, 10, 64); err != nil {
				return nil, fmt.Errorf("kcat output, record %d: header %q: %w", len(recs), line, err)
			}
		}
		rec := consumedRecord{Partition: int32(nums[0]), Offset: nums[1], KeyNull: nums[2] < 0, ValueNull: nums[3] < 0}
		rec.Key = make([]byte, max(nums[2], 0))
		rec.Value = make([]byte, max(nums[3], 0))
		_, err = io.ReadFull(r, rec.Key)
		if err == nil {
			_, err = io.ReadFull(r, rec.Value)
		}
		if err == nil {
			var nl byte
			if nl, err = r.ReadByte(); err == nil && nl != '\n' {
				err = fmt.Errorf("byte %q after the value, want a newline", nl)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("kcat output, record %d (%s): %w", len(recs), strings.TrimSpace(line), err)
		}
		recs = append(recs, rec)
	}
}
