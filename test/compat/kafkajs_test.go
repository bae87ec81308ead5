package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/tool"
)

// TestKafkaJS produces the dataset with kafkajs in every codec (gzip is
// built in; snappy, lz4 and zstd are codec plugins, see js/package.json),
// checks the acknowledged offsets, reads it back with franz-go, and then
// with a kafkajs consumer, which has to join a consumer group.
func TestKafkaJS(t *testing.T) {
	node := tool.Look(t, "node")
	jsDir, err := filepath.Abs("js")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, jsDir)
	script := filepath.Join(jsDir, "compat_client.js")
	ds := theDataset()
	input := filepath.Join(t.TempDir(), "records.bin")
	if err := ds.writeInputFile(input); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kafkajs-" + codec
			c.createTopic(t, topic)
			t.Run("produce", func(t *testing.T) {
				acksFile := filepath.Join(t.TempDir(), "acks.bin")
				runTool(t, c.ctx(t, produceTimeout), jsDir, node, script, "produce", c.addr(), topic, codec, input, acksFile)
				acks, err := readAcksFile(acksFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := ds.checkAcks(acks); err != nil {
					t.Fatalf("kafkajs producer: %v", err)
				}
				c.checkOffsets(t, topic, ds)
				c.checkFranzConsume(t, topic, codec, ds)
			})
			t.Run("consume", func(t *testing.T) {
				outFile := filepath.Join(t.TempDir(), "consumed.bin")
				runTool(t, c.ctx(t, consumeTimeout), jsDir, node, script, "consume", c.addr(), topic,
					strconv.Itoa(len(ds.keys)), outFile)
				recs, err := readOutputFile(outFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := ds.check(recs, false); err != nil {
					t.Fatalf("kafkajs consumer: %v", err)
				}
			})
		})
	}
}

// npmCI installs js/node_modules from package-lock.json when it is missing
// (`make deps` does the same).
func npmCI(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err == nil {
		return
	}
	npm := tool.Look(t, "npm")
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci: %v", time.Since(start).Round(time.Millisecond))
}
