package broker

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// Flush objects are shared by partitions, so an object is deleted only when
// no segment record references it any more (retention, DeleteRecords,
// deleted topics) and it is older than a grace period: long enough that an
// upload whose commit is still in flight, or a fetch holding an older
// segment list, is never cut off.

// floe's own objects: flush objects (wal/) and compacted stream objects (obj/).
var walObjectName = regexp.MustCompile(`^[0-9a-f]{4}/(wal/[0-9]+-[0-9]+-[0-9]+|obj/[0-9a-f]{32}-[0-9]+-[0-9]+-[0-9]+)\.fobj$`)

// collectGarbage deletes unreferenced flush objects older than grace and
// returns how many it deleted. grace must outlast the time from an upload
// to its metadata commit (a flush or a compaction), or an object could be
// deleted before the commit that references it lands.
func (b *Broker) collectGarbage(ctx context.Context, grace time.Duration) (int, error) {
	// Read the references first: an object committed after this listing is
	// younger than grace when the bucket is listed below, so it is kept.
	kvs, err := b.meta.List(ctx, "segments/")
	if err != nil {
		return 0, err
	}
	live := make(map[string]bool)
	for _, kv := range kvs {
		var s segment
		if json.Unmarshal(kv.Value, &s) == nil {
			live[s.Object] = true
		}
	}
	var candidates []string
	err = b.bucket.Iter(ctx, "", func(name string) error {
		if walObjectName.MatchString(name) && !live[name] {
			candidates = append(candidates, name)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, name := range candidates {
		attrs, err := b.bucket.Attributes(ctx, name)
		if err != nil || time.Since(attrs.LastModified) < grace {
			continue
		}
		if err := b.bucket.Delete(ctx, name); err != nil {
			b.log.Warn("deleting unreferenced object", "object", name, "err", err)
			continue
		}
		deleted++
	}
	if deleted > 0 {
		b.log.Info("garbage collected objects", "deleted", deleted, "candidates", len(candidates))
	}
	b.m.gcDeleted.Add(float64(deleted))
	return deleted, nil
}

func (b *Broker) runGC(interval, grace time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
		}
		if !b.isController() {
			continue // one collector per cluster: the controller
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		if _, err := b.collectGarbage(ctx, grace); err != nil && !strings.Contains(err.Error(), "closed") {
			b.log.Warn("object garbage collection failed", "err", err)
		}
		cancel()
	}
}
