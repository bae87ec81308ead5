package broker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// configType is how a topic config value is validated.
type configType int

const (
	cfgLong configType = iota
	cfgInt
	cfgBool
	cfgDouble
	cfgString
	cfgList
)

// configDef is one topic config with Kafka's name, default and validation.
type configDef struct {
	name  string
	def   string
	typ   configType
	min   float64 // numeric lower bound (inclusive)
	enum  []string
	floeN string // documentation: what floe does with it
}

// topicConfigDefs are the topic configs floe accepts, with Kafka's
// defaults. Configs that only matter to disk-based Kafka (segment sizes,
// flush settings) are accepted and reported so tools keep working.
var topicConfigDefs = func() map[string]configDef {
	defs := []configDef{
		{name: "retention.ms", def: "604800000", typ: cfgLong, min: -1},
		{name: "retention.bytes", def: "-1", typ: cfgLong, min: -1},
		{name: "cleanup.policy", def: "delete", typ: cfgList, enum: []string{"delete", "compact"}},
		{name: "max.message.bytes", def: "1048588", typ: cfgInt, min: 0},
		{name: "message.timestamp.type", def: "CreateTime", typ: cfgString, enum: []string{"CreateTime", "LogAppendTime"}},
		{name: "message.timestamp.difference.max.ms", def: "9223372036854775807", typ: cfgLong, min: 0},
		{name: "message.timestamp.before.max.ms", def: "9223372036854775807", typ: cfgLong, min: 0},
		{name: "message.timestamp.after.max.ms", def: "9223372036854775807", typ: cfgLong, min: 0},
		{name: "compression.type", def: "producer", typ: cfgString, enum: []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}},
		{name: "min.insync.replicas", def: "1", typ: cfgInt, min: 1},
		{name: "segment.bytes", def: "1073741824", typ: cfgInt, min: 14},
		{name: "segment.ms", def: "604800000", typ: cfgLong, min: 1},
		{name: "segment.index.bytes", def: "10485760", typ: cfgInt, min: 4},
		{name: "segment.jitter.ms", def: "0", typ: cfgLong, min: 0},
		{name: "delete.retention.ms", def: "86400000", typ: cfgLong, min: 0},
		{name: "min.compaction.lag.ms", def: "0", typ: cfgLong, min: 0},
		{name: "max.compaction.lag.ms", def: "9223372036854775807", typ: cfgLong, min: 1},
		{name: "min.cleanable.dirty.ratio", def: "0.5", typ: cfgDouble, min: 0},
		{name: "file.delete.delay.ms", def: "60000", typ: cfgLong, min: 0},
		{name: "flush.messages", def: "9223372036854775807", typ: cfgLong, min: 1},
		{name: "flush.ms", def: "9223372036854775807", typ: cfgLong, min: 0},
		{name: "index.interval.bytes", def: "4096", typ: cfgInt, min: 0},
		{name: "preallocate", def: "false", typ: cfgBool},
		{name: "unclean.leader.election.enable", def: "false", typ: cfgBool},
		{name: "message.downconversion.enable", def: "true", typ: cfgBool},
		{name: "local.retention.ms", def: "-2", typ: cfgLong, min: -2},
		{name: "local.retention.bytes", def: "-2", typ: cfgLong, min: -2},
		{name: "remote.storage.enable", def: "false", typ: cfgBool},
		{name: "follower.replication.throttled.replicas", def: "", typ: cfgString},
		{name: "leader.replication.throttled.replicas", def: "", typ: cfgString},
	}
	defs = append(defs, tableTopicConfigDefs...)
	m := make(map[string]configDef, len(defs))
	for _, d := range defs {
		m[d.name] = d
	}
	return m
}()

// tableTopicConfigDefs are the table-topic configs of DESIGN §7. Each is
// also accepted under the automq.table.topic. prefix (for users migrating
// from AutoMQ) and stored under its floe name.
var tableTopicConfigDefs = []configDef{
	{name: "table.topic.enable", def: "false", typ: cfgBool},
	{name: "table.topic.commit.interval.ms", def: "60000", typ: cfgLong, min: 1},
	{name: "table.topic.namespace", def: "default", typ: cfgString},
	{name: "table.topic.name", def: "", typ: cfgString},
	{name: "table.topic.convert.value.type", def: "raw", typ: cfgString, enum: []string{"raw", "string", "by_schema_id", "by_latest_schema"}},
	{name: "table.topic.convert.key.type", def: "string", typ: cfgString, enum: []string{"raw", "string", "by_schema_id", "by_latest_schema"}},
	{name: "table.topic.convert.value.by_latest_schema.subject", def: "", typ: cfgString},
	{name: "table.topic.convert.key.by_latest_schema.subject", def: "", typ: cfgString},
	{name: "table.topic.transform.value.type", def: "none", typ: cfgString, enum: []string{"none", "flatten", "flatten_debezium"}},
	{name: "table.topic.partition.by", def: "[]", typ: cfgString},
	{name: "table.topic.id.columns", def: "[]", typ: cfgString},
	{name: "table.topic.upsert.enable", def: "false", typ: cfgBool},
	{name: "table.topic.cdc.field", def: "", typ: cfgString},
	{name: "table.topic.errors.tolerance", def: "invalid_data", typ: cfgString, enum: []string{"none", "invalid_data", "all"}},
	{name: "table.topic.dlq.topic", def: "", typ: cfgString},
	{name: "table.topic.target.file.size.bytes", def: "134217728", typ: cfgLong, min: 1 << 20},
	{name: "table.topic.expire.snapshot.enabled", def: "true", typ: cfgBool},
	{name: "table.topic.expire.snapshot.older.than.hours", def: "1", typ: cfgInt, min: 0},
	{name: "table.topic.expire.snapshot.retain.last", def: "1", typ: cfgInt, min: 1},
	// Maintenance (tabletopic/maintain): compaction toward
	// target.file.size.bytes once a partition has min.input.files small
	// files, and cleanup of unreferenced files older than the grace period.
	{name: "table.topic.compaction.enable", def: "true", typ: cfgBool},
	{name: "table.topic.compaction.min.input.files", def: "8", typ: cfgInt, min: 2},
	{name: "table.topic.orphan.cleanup.enable", def: "true", typ: cfgBool},
	{name: "table.topic.orphan.cleanup.older.than.hours", def: "24", typ: cfgInt, min: 1},
}

// automqTablePrefix is AutoMQ's spelling of the table-topic configs.
const automqTablePrefix = "automq."

// canonicalConfigName maps automq.table.topic.X to table.topic.X.
func canonicalConfigName(name string) string {
	if strings.HasPrefix(name, automqTablePrefix+"table.topic.") {
		return strings.TrimPrefix(name, automqTablePrefix)
	}
	return name
}

// canonicalConfigs renames AutoMQ-style keys; a key given both ways is an error.
func canonicalConfigs(in map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		c := canonicalConfigName(k)
		if _, dup := out[c]; dup {
			return nil, fmt.Errorf("config %s given twice (also as %s)", c, automqTablePrefix+c)
		}
		out[c] = v
	}
	return out, nil
}

// topicConfigNames returns every known config name, sorted.
func topicConfigNames() []string {
	names := make([]string, 0, len(topicConfigDefs))
	for n := range topicConfigDefs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// validateTopicConfig checks one name/value pair; the error text goes back
// to the client with INVALID_CONFIG.
func validateTopicConfig(name, value string) error {
	d, ok := topicConfigDefs[canonicalConfigName(name)]
	if !ok {
		return fmt.Errorf("unknown topic config name: %s", name)
	}
	bad := func(why string) error {
		return fmt.Errorf("invalid value %q for configuration %s: %s", value, name, why)
	}
	if d.name == "table.topic.dlq.topic" && value != "" {
		if err := validTopicName(value); err != nil {
			return bad(err.Error())
		}
	}
	switch d.typ {
	case cfgLong, cfgInt:
		bits := 64
		if d.typ == cfgInt {
			bits = 32
		}
		v, err := strconv.ParseInt(strings.TrimSpace(value), 10, bits)
		if err != nil {
			return bad("not a number")
		}
		if float64(v) < d.min {
			return bad(fmt.Sprintf("value must be at least %v", d.min))
		}
	case cfgDouble:
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || v < d.min {
			return bad("not a valid number")
		}
	case cfgBool:
		if _, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(value))); err != nil {
			return bad("expected true or false")
		}
	case cfgString:
		if len(d.enum) > 0 && !contains(d.enum, value) {
			return bad("must be one of " + strings.Join(d.enum, ", "))
		}
	case cfgList:
		for _, part := range strings.Split(value, ",") {
			if !contains(d.enum, strings.TrimSpace(part)) {
				return bad("must be a list of " + strings.Join(d.enum, ", "))
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
