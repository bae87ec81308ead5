package maintain

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Policy is what background maintenance does for one table.
type Policy struct {
	// Compact enables background compaction.
	Compact bool
	// TargetFileBytes is the size compaction writes toward; files under
	// 75% of it are small.
	TargetFileBytes int64
	// MinInputFiles is how many small files a partition (of the Iceberg
	// partition spec) needs before it is compacted.
	MinInputFiles int
	// Expire enables snapshot expiry: snapshots older than ExpireOlderThan
	// beyond the last RetainLast go.
	Expire          bool
	ExpireOlderThan time.Duration
	RetainLast      int
	// RemoveOrphans enables orphan-file cleanup of files older than
	// OrphanOlderThan (at least MinOrphanAge).
	RemoveOrphans   bool
	OrphanOlderThan time.Duration
	// CheckInterval is how often the background loop looks at the table.
	CheckInterval time.Duration
}

// MinOrphanAge is the shortest grace period orphan cleanup accepts: a file
// younger than this may belong to a commit still in flight.
const MinOrphanAge = time.Hour

// DefaultPolicy is the policy of a table topic with no maintenance configs.
func DefaultPolicy() Policy {
	return Policy{
		Compact:         true,
		TargetFileBytes: 128 << 20,
		MinInputFiles:   8,
		Expire:          true,
		ExpireOlderThan: time.Hour,
		RetainLast:      1,
		RemoveOrphans:   true,
		OrphanOlderThan: 24 * time.Hour,
		CheckInterval:   5 * time.Minute,
	}
}

// Topic configs read by ParsePolicy (each also under the automq. prefix).
const (
	ConfigTargetFileBytes = "table.topic.target.file.size.bytes"
	ConfigCompact         = "table.topic.compaction.enable"
	ConfigMinInputFiles   = "table.topic.compaction.min.input.files"
	ConfigExpire          = "table.topic.expire.snapshot.enabled"
	ConfigExpireHours     = "table.topic.expire.snapshot.older.than.hours"
	ConfigRetainLast      = "table.topic.expire.snapshot.retain.last"
	ConfigOrphans         = "table.topic.orphan.cleanup.enable"
	ConfigOrphanHours     = "table.topic.orphan.cleanup.older.than.hours"
)

// ParsePolicy reads a topic's maintenance configs over DefaultPolicy. The
// broker validates them on the way in; a bad value here is still an error
// rather than a silent default.
func ParsePolicy(configs map[string]string) (Policy, error) {
	p := DefaultPolicy()
	var errs []error
	get := func(k string) (string, bool) {
		if v, ok := configs[k]; ok {
			return v, true
		}
		v, ok := configs["automq."+k]
		return v, ok
	}
	boolean := func(k string, dst *bool) {
		if v, ok := get(k); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", k, v))
				return
			}
			*dst = b
		}
	}
	integer := func(k string, min int64) (int64, bool) {
		v, ok := get(k)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			errs = append(errs, fmt.Errorf("%s=%q: want an integer >= %d", k, v, min))
			return 0, false
		}
		return n, true
	}
	hours := func(k string, min int64, dst *time.Duration) {
		if n, ok := integer(k, min); ok {
			if n > int64(100*365*24) {
				errs = append(errs, fmt.Errorf("%s=%d: too large", k, n))
				return
			}
			*dst = time.Duration(n) * time.Hour
		}
	}
	boolean(ConfigCompact, &p.Compact)
	if n, ok := integer(ConfigTargetFileBytes, 1); ok {
		p.TargetFileBytes = n
	}
	if n, ok := integer(ConfigMinInputFiles, 2); ok {
		p.MinInputFiles = int(min(n, 1<<20))
	}
	boolean(ConfigExpire, &p.Expire)
	hours(ConfigExpireHours, 0, &p.ExpireOlderThan)
	if n, ok := integer(ConfigRetainLast, 1); ok {
		p.RetainLast = int(min(n, 1<<20))
	}
	boolean(ConfigOrphans, &p.RemoveOrphans)
	hours(ConfigOrphanHours, 1, &p.OrphanOlderThan)
	return p, errors.Join(errs...)
}
