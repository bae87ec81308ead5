package tabletopic

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// partitionTerm is one transform of table.topic.partition.by.
type partitionTerm struct {
	transform iceberg.Transform
	column    string // dotted path for a nested field
}

func (t partitionTerm) String() string {
	if _, ok := t.transform.(iceberg.IdentityTransform); ok {
		return t.column
	}
	return t.transform.String() + "(" + t.column + ")"
}

// partitionFieldIDStart is where Iceberg partition field ids begin.
const partitionFieldIDStart = 1000

var (
	// name(args) or a bare column; a column is a dotted path.
	termRe   = regexp.MustCompile(`^(?:([a-z]+)\s*\(\s*(.*?)\s*\)|([^\s(),\[\]]+))$`)
	columnRe = regexp.MustCompile(`^[^\s(),\[\]]+$`)
)

// parsePartitionBy parses table.topic.partition.by, AutoMQ's syntax: a
// bracketed, comma-separated list of `col`, `year(col)`, `month(col)`,
// `day(col)`, `hour(col)`, `bucket(N, col)` and `truncate(W, col)`. An
// empty list means unpartitioned. Columns are checked against the
// table's schema later (bindPartitionSpec), once it is known.
func parsePartitionBy(s string) ([]partitionTerm, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, errors.New("want a bracketed list such as [day(ts), bucket(8, id)]")
	}
	body := strings.TrimSpace(s[1 : len(s)-1])
	if body == "" {
		return nil, nil
	}
	// Split on commas outside parentheses (bucket and truncate take two
	// arguments).
	var parts []string
	depth, start := 0, 0
	for i, c := range body {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced ')' in %q", body)
			}
		case ',':
			if depth == 0 {
				parts = append(parts, body[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced '(' in %q", body)
	}
	parts = append(parts, body[start:])

	terms := make([]partitionTerm, 0, len(parts))
	seen := map[string]bool{}
	for _, p := range parts {
		t, err := parseTerm(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		if seen[t.String()] {
			return nil, fmt.Errorf("%s appears twice", t)
		}
		seen[t.String()] = true
		terms = append(terms, t)
	}
	return terms, nil
}

func parseTerm(s string) (partitionTerm, error) {
	m := termRe.FindStringSubmatch(s)
	if m == nil {
		return partitionTerm{}, fmt.Errorf("cannot parse %q: want col, year(col), month(col), day(col), hour(col), bucket(N, col) or truncate(W, col)", s)
	}
	if m[3] != "" {
		return partitionTerm{transform: iceberg.IdentityTransform{}, column: m[3]}, nil
	}
	name, args := m[1], strings.Split(m[2], ",")
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
	}
	column := func(a string) (string, error) {
		if !columnRe.MatchString(a) {
			return "", fmt.Errorf("%q: %q is not a column name", s, a)
		}
		return a, nil
	}
	switch name {
	case "year", "month", "day", "hour":
		if len(args) != 1 {
			return partitionTerm{}, fmt.Errorf("%q: %s takes one column", s, name)
		}
		col, err := column(args[0])
		if err != nil {
			return partitionTerm{}, err
		}
		tr := map[string]iceberg.Transform{
			"year": iceberg.YearTransform{}, "month": iceberg.MonthTransform{},
			"day": iceberg.DayTransform{}, "hour": iceberg.HourTransform{},
		}[name]
		return partitionTerm{transform: tr, column: col}, nil
	case "bucket", "truncate":
		if len(args) != 2 {
			return partitionTerm{}, fmt.Errorf("%q: %s takes (N, column)", s, name)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n <= 0 {
			return partitionTerm{}, fmt.Errorf("%q: %s wants a positive integer first, got %q", s, name, args[0])
		}
		col, err := column(args[1])
		if err != nil {
			return partitionTerm{}, err
		}
		if name == "bucket" {
			return partitionTerm{transform: iceberg.BucketTransform{NumBuckets: n}, column: col}, nil
		}
		return partitionTerm{transform: iceberg.TruncateTransform{Width: n}, column: col}, nil
	default:
		return partitionTerm{}, fmt.Errorf("%q: unknown transform %q (want year, month, day, hour, bucket or truncate)", s, name)
	}
}

// partitionFieldName follows Iceberg's naming (Spark's and Java's):
// ts_day, id_bucket, name_trunc; identity keeps the column's name.
func partitionFieldName(t partitionTerm) string {
	base := strings.ReplaceAll(t.column, ".", "_")
	switch t.transform.(type) {
	case iceberg.IdentityTransform:
		return base
	case iceberg.BucketTransform:
		return base + "_bucket"
	case iceberg.TruncateTransform:
		return base + "_trunc"
	default:
		return base + "_" + t.transform.String()
	}
}

// bindPartitionSpec resolves terms against sc into the partition spec;
// an unknown column or a transform the column's type does not take is a
// config error.
func bindPartitionSpec(terms []partitionTerm, sc *iceberg.Schema) (iceberg.PartitionSpec, error) {
	if len(terms) == 0 {
		return *iceberg.UnpartitionedSpec, nil
	}
	fields := make([]iceberg.PartitionField, 0, len(terms))
	for i, t := range terms {
		f, ok := sc.FindFieldByName(t.column)
		if !ok {
			return iceberg.PartitionSpec{}, fmt.Errorf("%w: table.topic.partition.by: %s: the table has no column %q", ErrConfig, t, t.column)
		}
		if !t.transform.CanTransform(f.Type) {
			return iceberg.PartitionSpec{}, fmt.Errorf("%w: table.topic.partition.by: %s: column %q of type %s does not take %s", ErrConfig, t, t.column, f.Type, t.transform)
		}
		fields = append(fields, iceberg.PartitionField{
			SourceIDs: []int{f.ID},
			FieldID:   partitionFieldIDStart + i,
			Name:      partitionFieldName(t),
			Transform: t.transform,
		})
	}
	return iceberg.NewPartitionSpec(fields...), nil
}

// sameLayout tells whether two specs partition the same way (same source
// columns and transforms, in order); names and ids do not matter.
func sameLayout(a, b iceberg.PartitionSpec) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.SourceID() != fb.SourceID() || fa.Transform.String() != fb.Transform.String() {
			return false
		}
	}
	return true
}

func describeSpec(spec iceberg.PartitionSpec, sc *iceberg.Schema) string {
	if spec.IsUnpartitioned() {
		return "[] (unpartitioned)"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i := range spec.NumFields() {
		f := spec.Field(i)
		if i > 0 {
			b.WriteString(", ")
		}
		col, _ := sc.FindColumnName(f.SourceID())
		fmt.Fprintf(&b, "%s(%s)", f.Transform, col)
	}
	b.WriteByte(']')
	return b.String()
}

// dataWriter is where a worker's converted rows go: a rollingWriter for
// unpartitioned tables, a partitionedWriter otherwise.
type dataWriter interface {
	write(rec arrow.RecordBatch, sc *iceberg.Schema, firstOffset int64) error
	closeCurrent() error
	take() []*writtenFile
	abort()
}

var (
	_ dataWriter = (*rollingWriter)(nil)
	_ dataWriter = (*partitionedWriter)(nil)
)

// partitionedWriter writes each flushed batch with iceberg-go's
// partitioned fanout writer (table.WriteRecords), which splits the rows
// by partition value and returns one data file, with its partition
// record, per partition and target size. Files therefore do not span
// flushes: a file holds at most one flush's rows of its partition.
type partitionedWriter struct {
	ctx    context.Context
	tbl    *table.Table // a version of the table whose schema holds the rows' columns
	target int64
	done   []*writtenFile
}

func (p *partitionedWriter) write(rec arrow.RecordBatch, sc *iceberg.Schema, _ int64) error {
	// WriteRecords releases what it consumes; the caller releases rec too.
	rec.Retain()
	recs := func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }
	var errs []error
	for df, err := range table.WriteRecords(p.ctx, p.tbl, rec.Schema(), recs, table.WithTargetFileSize(p.target)) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.done = append(p.done, &writtenFile{path: df.FilePath(), size: df.FileSizeBytes(), rows: df.Count(), schema: sc, df: df})
	}
	if len(errs) > 0 {
		return fmt.Errorf("write partitioned files: %w", errors.Join(errs...))
	}
	return nil
}

// closeCurrent: every write closes its files.
func (p *partitionedWriter) closeCurrent() error { return nil }

func (p *partitionedWriter) take() []*writtenFile {
	out := p.done
	p.done = nil
	return out
}

// abort forgets the uncommitted files; like rollingWriter's, they are
// orphans for maintenance.
func (p *partitionedWriter) abort() { p.done = nil }

// useTable moves the writer to a newer version of the table (after a
// schema evolution).
func (p *partitionedWriter) useTable(tbl *table.Table) { p.tbl = tbl }
