package group

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
)

// TestMetaStoreRestart runs the restart path on the real metadata store:
// what one coordinator commits and settles, the next one loads exactly.
func TestMetaStoreRestart(t *testing.T) {
	ms := metastoretest.OpenEmbedded(t)
	h := &harness{t: t, clk: newFakeClock(), store: nil, cfg: testConfig()}
	start := func() {
		c, err := New(h.cfg, MetaStore(ms), fakeTopics{"orders": 4, "clicks": 2}, metastoretest.Logger(t), WithClock(h.clk))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.c = c
		t.Cleanup(c.Close)
	}
	start()
	ids, gen := h.stableGroup("g/with/slashes", 2)
	h.stableGroup("g", 1)
	for i := range 4 {
		if got := h.commit("g/with/slashes", ids[i%2], gen, "orders", i, 1000+i); got[0] != 0 {
			t.Fatalf("commit: %v", got)
		}
	}
	h.commit("simple", "", -1, "clicks", 1, 5)
	h.c.Close()

	start()
	got := h.fetch("g/with/slashes")
	for i := range 4 {
		if got["orders/"+string(rune('0'+i))] != int64(1000+i) {
			t.Fatalf("offsets after restart: %v", got)
		}
	}
	if len(h.fetch("g")) != 0 || h.fetch("simple")["clicks/1"] != 5 {
		t.Fatal("a group's offsets leaked into another")
	}
	resp := h.c.DescribeGroups(context.Background(), &kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{"g/with/slashes", "g"}})
	if resp.Groups[0].State != "Stable" || len(resp.Groups[0].Members) != 2 || len(resp.Groups[1].Members) != 1 {
		t.Fatalf("describe after restart: %+v", resp.Groups)
	}
	if code := h.heartbeat("g/with/slashes", ids[0], gen); code != 0 {
		t.Fatalf("heartbeat after restart: %d", code)
	}
}
