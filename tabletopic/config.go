package tabletopic

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/schema"
	"github.com/floe-io/floe/tabletopic/convert"
)

// Config configures a Service.
type Config struct {
	// CatalogURI is the Iceberg REST catalog (floe's own or any other).
	CatalogURI string
	// CatalogOptions are extra REST client options (credentials, OAuth
	// scope, SigV4, TLS...).
	CatalogOptions []rest.Option
	// IOProps are iceberg-go FileIO properties used to write data files
	// (s3.endpoint, s3.region, s3.access-key-id, ...). Credentials the
	// catalog vends take precedence.
	IOProps map[string]string
	// Registry resolves schema ids for by_schema_id / by_latest_schema.
	Registry schema.Client
	// NodeID is written into each commit's summary (floe.node-id).
	NodeID int32
	// PollInterval is how often topics and leadership are re-read (default 1s).
	PollInterval time.Duration
	// ReadBytes bounds one log read (default 1 MiB).
	ReadBytes int
	// Brokers are Kafka bootstrap addresses for producing to dead-letter
	// topics (table.topic.dlq.topic).
	Brokers []string
	// FlushBytes is how much converted data a worker buffers before it
	// encodes a Parquet row group (default 8 MiB); it bounds memory.
	FlushBytes int
	// ShutdownTimeout bounds the final commit on Close (default 30s).
	ShutdownTimeout time.Duration
	// MaxRetryBackoff caps the wait between retries after a failure (default 30s).
	MaxRetryBackoff time.Duration
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.ReadBytes <= 0 {
		c.ReadBytes = 1 << 20
	}
	if c.FlushBytes <= 0 {
		c.FlushBytes = 8 << 20
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.CatalogURI == "" {
		return errors.New("tabletopic: catalog URI is required")
	}
	return nil
}

// Error tolerances of table.topic.errors.tolerance.
const (
	toleranceNone        = "none"
	toleranceInvalidData = "invalid_data"
	toleranceAll         = "all"
)

// tableConfig is a topic's table.topic.* configuration, parsed.
type tableConfig struct {
	enabled         bool
	namespace       []string
	table           string
	commitInterval  time.Duration
	valueType       string
	keyType         string
	valueSubject    string
	keySubject      string
	transform       string
	tolerance       string
	targetFileBytes int64
	partitionBy     []partitionTerm
	upsert          bool
	// idColumns are table.topic.id.columns: the top-level columns that
	// identify a row (the table's identifier fields) when the table holds
	// the latest row per key (upsert or cdc.field). Empty: append only.
	idColumns []string
	// cdcField is the column holding each record's operation (I/U/D or
	// Debezium's c/u/r/d); empty when records are all upserts.
	cdcField string
	// dlqTopic is table.topic.dlq.topic: rejected
	// records are also produced there (dlqtopic.go). Empty: table only.
	dlqTopic string
	// fingerprint changes whenever any table.topic.* value does, so a
	// running table restarts on a config change.
	fingerprint string
}

// ErrConfig marks an invalid table.topic.* configuration.
var ErrConfig = errors.New("tabletopic: invalid table topic config")

// parseTableConfig reads a topic's table.topic.* configs. The broker has
// already validated each value and filled in defaults; anything missing
// falls back to the same defaults.
func parseTableConfig(t TopicInfo) (tableConfig, error) {
	get := func(k, def string) string {
		if v, ok := t.Configs["table.topic."+k]; ok {
			return v
		}
		if v, ok := t.Configs["automq.table.topic."+k]; ok {
			return v
		}
		return def
	}
	var (
		c    tableConfig
		errs []error
	)
	parseBool := func(k, def string) bool {
		v, err := strconv.ParseBool(get(k, def))
		if err != nil {
			errs = append(errs, fmt.Errorf("table.topic.%s: %w", k, err))
		}
		return v
	}
	parseInt := func(k, def string, min int64) int64 {
		v, err := strconv.ParseInt(get(k, def), 10, 64)
		if err != nil || v < min {
			errs = append(errs, fmt.Errorf("table.topic.%s=%q: want an integer >= %d", k, get(k, def), min))
		}
		return v
	}
	oneOf := func(k, def string, allowed ...string) string {
		v := get(k, def)
		if !slices.Contains(allowed, v) {
			errs = append(errs, fmt.Errorf("table.topic.%s=%q: want one of %v", k, v, allowed))
		}
		return v
	}
	c.enabled = parseBool("enable", "false")
	ns := get("namespace", "default")
	if ns == "" {
		ns = "default"
	}
	c.namespace = strings.Split(ns, ".")
	c.table = get("name", "")
	if c.table == "" {
		c.table = t.Name
	}
	// Iceberg identifiers are dotted; a topic name may contain dots.
	c.table = strings.ReplaceAll(c.table, ".", "_")
	c.commitInterval = time.Duration(parseInt("commit.interval.ms", "60000", 1)) * time.Millisecond
	convertTypes := []string{"raw", "string", "by_schema_id", "by_latest_schema"}
	c.valueType = oneOf("convert.value.type", "raw", convertTypes...)
	c.keyType = oneOf("convert.key.type", "string", convertTypes...)
	c.valueSubject = get("convert.value.by_latest_schema.subject", "")
	c.keySubject = get("convert.key.by_latest_schema.subject", "")
	c.transform = oneOf("transform.value.type", "none", "none", "flatten", "flatten_debezium")
	c.tolerance = oneOf("errors.tolerance", toleranceInvalidData, toleranceNone, toleranceInvalidData, toleranceAll)
	c.targetFileBytes = parseInt("target.file.size.bytes", "134217728", 1)
	pb := get("partition.by", "[]")
	if terms, err := parsePartitionBy(pb); err != nil {
		errs = append(errs, fmt.Errorf("table.topic.partition.by=%s: %w", pb, err))
	} else {
		c.partitionBy = terms
	}
	c.upsert = parseBool("upsert.enable", "false")
	idc := get("id.columns", "[]")
	if cols, err := parseIDColumns(idc); err != nil {
		errs = append(errs, fmt.Errorf("table.topic.id.columns=%s: %w", idc, err))
	} else {
		c.idColumns = cols
	}
	c.cdcField = strings.TrimSpace(get("cdc.field", ""))
	c.dlqTopic = strings.TrimSpace(get("dlq.topic", ""))
	if c.dlqTopic == t.Name {
		errs = append(errs, fmt.Errorf("table.topic.dlq.topic=%s is the topic itself", c.dlqTopic))
	}
	// Snapshot expiry, compaction and orphan cleanup settings are read by
	// package maintain (maintain.ParsePolicy).

	// flatten_debezium carries the op in its own column: with id columns
	// it is the CDC field unless another one is named.
	if c.cdcField == "" && len(c.idColumns) > 0 && c.transform == "flatten_debezium" {
		c.cdcField = convert.ColumnCDCOp
	}
	// Settings that would silently do less than asked are refused.
	switch {
	case c.upsert && len(c.idColumns) == 0:
		errs = append(errs, errors.New("table.topic.upsert.enable=true needs table.topic.id.columns"))
	case c.cdcField != "" && len(c.idColumns) == 0:
		errs = append(errs, fmt.Errorf("table.topic.cdc.field=%s needs table.topic.id.columns", c.cdcField))
	case len(c.idColumns) > 0 && !c.upsert && c.cdcField == "":
		errs = append(errs, errors.New("table.topic.id.columns needs table.topic.upsert.enable=true or table.topic.cdc.field"))
	}
	if c.cdcField != "" && slices.Contains(c.idColumns, c.cdcField) {
		errs = append(errs, fmt.Errorf("table.topic.cdc.field=%s cannot be an id column", c.cdcField))
	}

	keys := slices.Sorted(maps.Keys(t.Configs))
	var fp strings.Builder
	fmt.Fprintf(&fp, "%x/%d", t.ID, t.Partitions)
	for _, k := range keys {
		if strings.HasPrefix(k, "table.topic.") || strings.HasPrefix(k, "automq.table.topic.") {
			fmt.Fprintf(&fp, ";%s=%s", k, t.Configs[k])
		}
	}
	c.fingerprint = fp.String()
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

// keyed reports whether the table holds the latest row per id (upsert or
// CDC) rather than every record.
func (c *tableConfig) keyed() bool { return len(c.idColumns) > 0 }

// parseIDColumns parses table.topic.id.columns: a bracketed or bare
// comma-separated list of top-level column names.
func parseIDColumns(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") != strings.HasSuffix(s, "]") {
		return nil, errors.New("unbalanced brackets")
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var cols []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		switch {
		case c == "":
			return nil, errors.New("empty column name")
		case c == "_from_debezium_key_":
			return nil, errors.New("_from_debezium_key_ is not supported; name the key's columns as they appear in the flattened value")
		case !columnRe.MatchString(c) || strings.Contains(c, "."):
			return nil, fmt.Errorf("%q is not a top-level column name (nested id columns are not supported)", c)
		case slices.Contains(cols, c):
			return nil, fmt.Errorf("%s appears twice", c)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// tableName is namespace.table, the name status and metrics use.
func (c *tableConfig) tableName() string {
	return strings.Join(c.namespace, ".") + "." + c.table
}
