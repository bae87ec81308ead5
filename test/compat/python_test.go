package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// python is Debian's interpreter, which has python3-confluent-kafka
// (a pyenv or venv python on PATH usually does not).
const python = "/usr/bin/python3"

// TestConfluentKafkaPython produces the dataset with confluent-kafka-python
// in every codec, checks the acknowledged offsets, and reads it back with
// franz-go and with its own consumer, both with assign() (no group) and
// with subscribe() (a consumer group).
func TestConfluentKafkaPython(t *testing.T) {
	if out, err := exec.Command(python, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import confluent_kafka (%v: %s): run `make deps` (python3-confluent-kafka)", python, err, out)
	}
	script, err := filepath.Abs(filepath.Join("py", "compat_client.py"))
	if err != nil {
		t.Fatal(err)
	}
	ds := theDataset()
	dir := t.TempDir()
	input := filepath.Join(dir, "records.bin")
	if err := ds.writeInputFile(input); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "python-" + codec
			c.createTopic(t, topic)
			acksFile := filepath.Join(t.TempDir(), "acks.bin")
			runTool(t, c.ctx(t, produceTimeout), "", python, script, "produce", c.addr(), topic, codec, input, acksFile)
			acks, err := readAcksFile(acksFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := ds.checkAcks(acks); err != nil {
				t.Fatalf("confluent-kafka-python producer: %v", err)
			}
			c.checkOffsets(t, topic, ds)

			c.checkFranzConsume(t, topic, codec, ds)

			// assign(): direct partition reads; subscribe(): the same
			// through a consumer group.
			for _, mode := range []string{"assign", "subscribe"} {
				outFile := filepath.Join(t.TempDir(), "consumed.bin")
				runTool(t, c.ctx(t, consumeTimeout), "", python, script, "consume", c.addr(), topic,
					strconv.Itoa(numPartitions), strconv.Itoa(len(ds.keys)), outFile, mode)
				recs, err := readOutputFile(outFile)
				if err != nil {
					t.Fatal(err)
				}
				_ = os.Remove(outFile)
				if err := ds.check(recs, false); err != nil {
					t.Fatalf("confluent-kafka-python consumer (%s): %v", mode, err)
				}
			}
		})
	}
}
