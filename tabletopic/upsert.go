package tabletopic

// Upsert and CDC tables (table.topic.id.columns with upsert.enable or
// cdc.field) hold the latest row per key. Each round's commit is one
// Iceberg v2 row delta whose files all get the snapshot's sequence number
// S, and the spec's sequence-number rules make it exact:
//
//   - an equality delete applies to data files with a sequence number
//     strictly below its own, so ONE equality-delete file per table
//     partition, listing every key the round touched (updated or deleted),
//     removes those keys' rows from earlier commits and none of this one;
//   - a position delete applies to data files with a sequence number at or
//     below its own, so the rows of this round that a later record of the
//     round superseded are removed by position: the worker wrote them, so
//     it knows their file and row (no read, no equality lookup);
//   - within one flushed batch only each key's last record is written at
//     all (the batch is in memory anyway, bounded by FlushBytes), so
//     position deletes are only needed across flushes of a round.
//
// A round is what one worker hands over in one checkpoint, and it must
// land in exactly one commit: two rounds in one snapshot would share a
// sequence number, and a key written by both would keep both rows. The
// coordinator commits every round or ends the session (see round), and a
// new session replays from the committed offsets: the replayed rounds
// produce the same latest row per key, so exactly-once holds as for
// append tables (the delete files ride in the same conditional commit as
// the data files and floe.offsets).
//
// Partitioned tables: a delete file applies only to data files of its own
// partition (unless it is a global delete written under an unpartitioned
// spec, which a table created partitioned does not have). So every
// partition source column must be an id column: a key then always lands
// in the same partition, and its equality delete is written there. This
// is the rule Flink's Iceberg upsert sink has too.
//
// Keys are assumed to stay in one Kafka partition (the default
// partitioner hashes the record key; Debezium keys by primary key): two
// workers writing one key in the same round would both keep a row.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floe-io/floe/tabletopic/convert"
)

// upsertWriter is the dataWriter of a keyed table: it writes each key's
// latest row and the delete files that retire the older ones.
type upsertWriter struct {
	sink      *fileSink
	partition int32 // Kafka partition, in file names
	target    int64
	idColumns []string
	cdcColumn string // "" when every record is an upsert
	spec      iceberg.PartitionSpec
	schema    *iceberg.Schema // of the latest rows written

	// parts holds a rolling writer per table partition ("" when
	// unpartitioned), kept across rounds.
	parts map[string]*keyPartition

	// Round state, reset by endRound.
	live map[string]rowPlace      // key -> its latest row this round
	eq   map[string][]arrow.Array // partition -> id columns of keys first touched, per column chunks
	eqSc map[string]*arrow.Schema // partition -> schema of those id columns
	pos  map[string]*posDeletes   // data file path -> superseded rows
	done []*writtenFile
}

type keyPartition struct {
	values map[int]any // partition values (spec field id -> value)
	rw     *rollingWriter
}

// rowPlace is where a key's latest row of the round is; file is "" when
// the key's latest operation was a delete.
type rowPlace struct {
	file string
	part string
	pos  int64
}

type posDeletes struct {
	part      string
	positions []int64
}

var (
	_ dataWriter = (*upsertWriter)(nil)
	_ roundEnder = (*upsertWriter)(nil)
)

// roundEnder is a dataWriter with files to write once per checkpoint.
type roundEnder interface {
	// endRound closes the round: what take returns next is everything
	// the round's commit needs.
	endRound() error
}

func newUpsertWriter(sink *fileSink, spec iceberg.PartitionSpec, cfg *tableConfig, partition int32) *upsertWriter {
	u := &upsertWriter{
		sink: sink, partition: partition, target: cfg.targetFileBytes,
		idColumns: cfg.idColumns, cdcColumn: cfg.cdcField, spec: spec,
		parts: map[string]*keyPartition{},
	}
	u.resetRound()
	return u
}

func (u *upsertWriter) resetRound() {
	for _, cols := range u.eq {
		for _, c := range cols {
			c.Release()
		}
	}
	u.live = map[string]rowPlace{}
	u.eq = map[string][]arrow.Array{}
	u.eqSc = map[string]*arrow.Schema{}
	u.pos = map[string]*posDeletes{}
}

// write takes a flushed batch of converted rows in offset order.
func (u *upsertWriter) write(rec arrow.RecordBatch, sc *iceberg.Schema, firstOffset int64) error {
	u.schema = sc
	n := int(rec.NumRows())
	keyCols := make([]arrow.Array, len(u.idColumns))
	keyIdx := make([]int, len(u.idColumns))
	for i, name := range u.idColumns {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return fmt.Errorf("upsert: the rows lack id column %s", name)
		}
		keyIdx[i], keyCols[i] = idx[0], rec.Column(idx[0])
	}
	var ops *array.String
	if u.cdcColumn != "" {
		idx := rec.Schema().FieldIndices(u.cdcColumn)
		if len(idx) != 1 {
			return fmt.Errorf("upsert: the rows lack CDC column %s", u.cdcColumn)
		}
		var ok bool
		if ops, ok = rec.Column(idx[0]).(*array.String); !ok {
			return fmt.Errorf("upsert: CDC column %s is %s, not string", u.cdcColumn, rec.Column(idx[0]).DataType())
		}
	}
	parter, err := newPartitioner(u.spec, sc, u.idColumns, keyCols)
	if err != nil {
		return err
	}

	keys := make([]string, n)
	last := make(map[string]int, n)
	var buf []byte
	for i := range n {
		if buf, err = appendKey(buf[:0], keyCols, i); err != nil {
			return err
		}
		keys[i] = string(buf)
		last[keys[i]] = i
	}
	keep := map[string][]int{}  // partition -> rows to write
	first := map[string][]int{} // partition -> rows of keys first touched this round
	for i := range n {
		k := keys[i]
		if last[k] != i {
			continue // a later record of this batch supersedes it: never written
		}
		part, values, err := parter.partitionOf(i)
		if err != nil {
			return err
		}
		if _, ok := u.parts[part]; !ok {
			u.parts[part] = &keyPartition{values: values, rw: &rollingWriter{
				sink: u.sink, partition: u.partition, target: u.target, partValues: values, partPath: part,
			}}
		}
		prev, seen := u.live[k]
		switch {
		case !seen:
			first[part] = append(first[part], i)
		case prev.file != "":
			pd := u.pos[prev.file]
			if pd == nil {
				pd = &posDeletes{part: prev.part}
				u.pos[prev.file] = pd
			}
			pd.positions = append(pd.positions, prev.pos)
		}
		del := false
		if ops != nil {
			ok := ops.IsValid(i)
			if ok {
				del, ok = convert.CDCOp(ops.Value(i))
			}
			if !ok {
				// The converter rejects these; a row here is a bug.
				return fmt.Errorf("upsert: row %d has CDC operation %q", i, ops.Value(i))
			}
		}
		if del {
			u.live[k] = rowPlace{}
		} else {
			keep[part] = append(keep[part], i)
		}
	}

	for _, part := range slices.Sorted(maps.Keys(first)) {
		cols, err := takeColumns(rec, keyIdx, first[part])
		if err != nil {
			return err
		}
		if u.eqSc[part] == nil {
			fields := make([]arrow.Field, len(keyIdx))
			for i, c := range keyIdx {
				fields[i] = rec.Schema().Field(c)
			}
			u.eqSc[part] = arrow.NewSchema(fields, nil)
			u.eq[part] = make([]arrow.Array, 0, len(cols))
		}
		// Store chunks column-major: eq[part][j*len(ids)+c].
		u.eq[part] = append(u.eq[part], cols...)
	}
	for _, part := range slices.Sorted(maps.Keys(keep)) {
		rows := keep[part]
		sub, err := takeRows(rec, rows)
		if err != nil {
			return err
		}
		kp := u.parts[part]
		path, start, err := kp.rw.writeRows(sub, sc, firstOffset)
		sub.Release()
		if err != nil {
			return err
		}
		for j, i := range rows {
			u.live[keys[i]] = rowPlace{file: path, part: part, pos: start + int64(j)}
		}
	}
	return nil
}

// closeCurrent closes the open data files; the round goes on (a schema
// change closes files mid-round).
func (u *upsertWriter) closeCurrent() error {
	for _, part := range slices.Sorted(maps.Keys(u.parts)) {
		rw := u.parts[part].rw
		if err := rw.closeCurrent(); err != nil {
			return err
		}
		u.done = append(u.done, rw.take()...)
	}
	return nil
}

// endRound writes the round's equality and position deletes.
func (u *upsertWriter) endRound() error {
	if err := u.closeCurrent(); err != nil {
		return err
	}
	defer u.resetRound()
	if len(u.eq) == 0 && len(u.pos) == 0 {
		return nil
	}
	if u.schema == nil {
		return errors.New("upsert: deletes without rows")
	}
	ids := make([]int, len(u.idColumns))
	for i, name := range u.idColumns {
		f, ok := u.schema.FindFieldByName(name)
		if !ok {
			return fmt.Errorf("upsert: the table has no id column %s", name)
		}
		ids[i] = f.ID
	}
	delSchema, err := u.schema.Select(true, u.idColumns...)
	if err != nil {
		return fmt.Errorf("upsert: equality delete schema: %w", err)
	}
	for _, part := range slices.Sorted(maps.Keys(u.eq)) {
		f, err := u.writeEqualityDeletes(part, delSchema, ids)
		if err != nil {
			return err
		}
		u.done = append(u.done, f)
	}
	for _, path := range slices.Sorted(maps.Keys(u.pos)) {
		f, err := u.writePositionDeletes(path, u.pos[path])
		if err != nil {
			return err
		}
		u.done = append(u.done, f)
	}
	return nil
}

func (u *upsertWriter) writeEqualityDeletes(part string, delSchema *iceberg.Schema, ids []int) (*writtenFile, error) {
	sc, chunks := u.eqSc[part], u.eq[part]
	ncol := sc.NumFields()
	w, err := openParquetWriter(u.sink, delSchema, sc, deleteFileName(u.partition, part, "eq-deletes"))
	if err != nil {
		return nil, err
	}
	for j := 0; j+ncol <= len(chunks); j += ncol {
		rec := array.NewRecordBatch(sc, chunks[j:j+ncol], int64(chunks[j].Len()))
		err := w.write(rec)
		rec.Release()
		if err != nil {
			w.abort()
			return nil, err
		}
	}
	f, err := w.close()
	if err != nil {
		w.abort()
		return nil, err
	}
	f.content, f.equalityIDs, f.partition = iceberg.EntryContentEqDeletes, ids, u.parts[part].values
	return f, nil
}

// writePositionDeletes writes one file-scoped position-delete file: the
// spec wants rows sorted by file path, then position.
func (u *upsertWriter) writePositionDeletes(path string, pd *posDeletes) (*writtenFile, error) {
	slices.Sort(pd.positions)
	sc, err := table.SchemaToArrowSchema(iceberg.PositionalDeleteSchema, nil, true, false)
	if err != nil {
		return nil, err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	paths, positions := b.Field(0).(*array.StringBuilder), b.Field(1).(*array.Int64Builder)
	for _, p := range pd.positions {
		paths.Append(path)
		positions.Append(p)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w, err := openParquetWriter(u.sink, iceberg.PositionalDeleteSchema, sc, deleteFileName(u.partition, pd.part, "pos-deletes"))
	if err != nil {
		return nil, err
	}
	if err := w.write(rec); err != nil {
		w.abort()
		return nil, err
	}
	f, err := w.close()
	if err != nil {
		w.abort()
		return nil, err
	}
	f.content, f.partition = iceberg.EntryContentPosDeletes, u.parts[pd.part].values
	return f, nil
}

func (u *upsertWriter) take() []*writtenFile {
	out := u.done
	u.done = nil
	return out
}

func (u *upsertWriter) abort() {
	for _, kp := range u.parts {
		kp.rw.abort()
	}
	u.done = nil
	u.resetRound()
}

// appendKey appends row's id values to buf, encoded so that two keys are
// equal exactly when their values are.
func appendKey(buf []byte, cols []arrow.Array, row int) ([]byte, error) {
	for _, c := range cols {
		if c.IsNull(row) {
			// The converter rejects these; a row here is a bug.
			return nil, fmt.Errorf("upsert: null id value at row %d", row)
		}
		switch a := c.(type) {
		case *array.Int32:
			buf = binary.BigEndian.AppendUint32(buf, uint32(a.Value(row)))
		case *array.Int64:
			buf = binary.BigEndian.AppendUint64(buf, uint64(a.Value(row)))
		case *array.Date32:
			buf = binary.BigEndian.AppendUint32(buf, uint32(a.Value(row)))
		case *array.Time64:
			buf = binary.BigEndian.AppendUint64(buf, uint64(a.Value(row)))
		case *array.Timestamp:
			buf = binary.BigEndian.AppendUint64(buf, uint64(a.Value(row)))
		case *array.Boolean:
			if a.Value(row) {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
		case *array.String:
			v := a.Value(row)
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		case *array.Binary:
			v := a.Value(row)
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		case *array.FixedSizeBinary:
			buf = append(buf, a.Value(row)...)
		case *array.Decimal128:
			v := a.Value(row)
			buf = binary.BigEndian.AppendUint64(buf, uint64(v.HighBits()))
			buf = binary.BigEndian.AppendUint64(buf, v.LowBits())
		default:
			if ext, ok := c.(array.ExtensionArray); ok {
				if fb, ok := ext.Storage().(*array.FixedSizeBinary); ok { // uuid
					buf = append(buf, fb.Value(row)...)
					continue
				}
			}
			return nil, fmt.Errorf("upsert: id columns of type %s are not supported", c.DataType())
		}
	}
	return buf, nil
}

// partitioner computes a row's table partition from its id columns (the
// partition sources are id columns, see checkKeyedTable).
type partitioner struct {
	spec   iceberg.PartitionSpec
	schema *iceberg.Schema
	fields []iceberg.PartitionField
	cols   []arrow.Array // source column of each field
	types  []iceberg.Type
	values map[string]map[int]any
}

func newPartitioner(spec iceberg.PartitionSpec, sc *iceberg.Schema, idColumns []string, keyCols []arrow.Array) (*partitioner, error) {
	p := &partitioner{spec: spec, schema: sc, values: map[string]map[int]any{}}
	for _, f := range spec.Fields() {
		name, ok := sc.FindColumnName(f.SourceID())
		i := slices.Index(idColumns, name)
		if !ok || i < 0 {
			return nil, fmt.Errorf("%w: partition field %s's source %q is not an id column", ErrConfig, f.Name, name)
		}
		typ, _ := sc.FindTypeByID(f.SourceID())
		p.fields = append(p.fields, f)
		p.cols = append(p.cols, keyCols[i])
		p.types = append(p.types, typ)
	}
	return p, nil
}

// partitionOf returns row's partition path and values.
func (p *partitioner) partitionOf(row int) (string, map[int]any, error) {
	if len(p.fields) == 0 {
		return "", nil, nil
	}
	rec := make(partitionValues, len(p.fields))
	for i, f := range p.fields {
		lit, err := literalAt(p.cols[i], row, p.types[i])
		if err != nil {
			return "", nil, err
		}
		out := f.Transform.Apply(iceberg.Optional[iceberg.Literal]{Valid: true, Val: lit})
		if out.Valid {
			rec[i] = out.Val.Any()
		}
	}
	path := p.spec.PartitionToPath(rec, p.schema)
	values, ok := p.values[path]
	if !ok {
		values = make(map[int]any, len(p.fields))
		for i, f := range p.fields {
			values[f.FieldID] = rec[i]
		}
		p.values[path] = values
	}
	return path, values, nil
}

// partitionValues is one partition tuple, for PartitionToPath.
type partitionValues []any

func (v partitionValues) Size() int        { return len(v) }
func (v partitionValues) Get(i int) any    { return v[i] }
func (v partitionValues) Set(i int, x any) { v[i] = x }

// literalAt is the Iceberg literal of an id column's value.
func literalAt(c arrow.Array, row int, typ iceberg.Type) (iceberg.Literal, error) {
	switch a := c.(type) {
	case *array.Int32:
		return iceberg.NewLiteral(a.Value(row)), nil
	case *array.Int64:
		return iceberg.NewLiteral(a.Value(row)), nil
	case *array.Date32:
		return iceberg.NewLiteral(iceberg.Date(a.Value(row))), nil
	case *array.Time64:
		return iceberg.NewLiteral(iceberg.Time(a.Value(row))), nil
	case *array.Timestamp:
		return iceberg.NewLiteral(iceberg.Timestamp(a.Value(row))), nil
	case *array.Boolean:
		return iceberg.NewLiteral(a.Value(row)), nil
	case *array.String:
		return iceberg.NewLiteral(a.Value(row)), nil
	case *array.Binary:
		return iceberg.NewLiteral(a.Value(row)), nil
	case *array.FixedSizeBinary:
		return iceberg.NewLiteral(a.Value(row)), nil
	case *array.Decimal128:
		dt, _ := typ.(iceberg.DecimalType)
		return iceberg.NewLiteral(iceberg.Decimal{Val: a.Value(row), Scale: dt.Scale()}), nil
	}
	if ext, ok := c.(array.ExtensionArray); ok {
		if fb, ok := ext.Storage().(*array.FixedSizeBinary); ok {
			id, err := uuid.FromBytes(fb.Value(row))
			if err != nil {
				return nil, err
			}
			return iceberg.NewLiteral(id), nil
		}
	}
	return nil, fmt.Errorf("upsert: cannot partition on id column of type %s", c.DataType())
}

// takeRows returns rec's rows at the ascending indexes rows.
func takeRows(rec arrow.RecordBatch, rows []int) (arrow.RecordBatch, error) {
	if len(rows) == int(rec.NumRows()) {
		rec.Retain() // ascending and complete: all of them, in order
		return rec, nil
	}
	cols, err := takeColumns(rec, nil, rows)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	return array.NewRecordBatch(rec.Schema(), cols, int64(len(rows))), nil
}

// takeColumns returns the given columns (nil: all) at rows.
func takeColumns(rec arrow.RecordBatch, columns []int, rows []int) ([]arrow.Array, error) {
	if columns == nil {
		columns = make([]int, rec.NumCols())
		for i := range columns {
			columns[i] = i
		}
	}
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	defer ib.Release()
	for _, r := range rows {
		ib.Append(int64(r))
	}
	idx := ib.NewArray()
	defer idx.Release()
	out := make([]arrow.Array, 0, len(columns))
	for _, c := range columns {
		a, err := compute.TakeArray(context.Background(), rec.Column(c), idx)
		if err != nil {
			for _, o := range out {
				o.Release()
			}
			return nil, fmt.Errorf("upsert: take rows of column %s: %w", rec.Schema().Field(c).Name, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func deleteFileName(partition int32, part, kind string) string {
	name := fmt.Sprintf("%05d-%s-%s.parquet", partition, kind, randomID()[:16])
	if part != "" {
		name = part + "/" + name
	}
	return name
}

// checkKeyedTable checks that a table can hold a keyed topic: format v2
// (v3 wants deletion vectors, which floe does not write yet), and every
// partition source an id column.
func (r *tableRunner) checkKeyedTable(tbl *table.Table) error {
	if v := tbl.Metadata().Version(); v != 2 {
		return fmt.Errorf("%w: %s is format version %d; upsert/CDC tables need version 2", errTableConflict, r.name, v)
	}
	sc, spec := tbl.Schema(), tbl.Spec()
	for _, f := range spec.Fields() {
		name, _ := sc.FindColumnName(f.SourceID())
		if !slices.Contains(r.cfg.idColumns, name) {
			return fmt.Errorf("%w: table.topic.partition.by: partition field %s is on %s, which is not one of table.topic.id.columns %v: "+
				"a key's rows must stay in one partition for its deletes to reach them", ErrConfig, f.Name, name, r.cfg.idColumns)
		}
	}
	return nil
}

// ensureIdentifier makes the id columns the table's required identifier
// fields once they all exist (with by_schema_id they appear with the first
// record's schema). Engines (Flink, Spark MERGE, Trino) read
// identifier-field-ids as the table's key. An id column can only become
// required while the table holds no rows: older rows could lack it.
func (r *tableRunner) ensureIdentifier(ctx context.Context, tbl *table.Table) (*table.Table, error) {
	if !r.cfg.keyed() {
		return tbl, nil
	}
	if err := r.checkKeyedTable(tbl); err != nil {
		return nil, err
	}
	sc := tbl.Schema()
	var (
		ids      []int
		optional []string
	)
	for _, name := range r.cfg.idColumns {
		i := slices.IndexFunc(sc.Fields(), func(f iceberg.NestedField) bool { return f.Name == name })
		if i < 0 {
			return tbl, nil // not yet
		}
		f := sc.Field(i)
		if err := checkIDType(name, f.Type); err != nil {
			return nil, err
		}
		ids = append(ids, f.ID)
		if !f.Required {
			optional = append(optional, name)
		}
	}
	have := slices.Sorted(slices.Values(sc.IdentifierFieldIDs))
	if len(optional) == 0 && slices.Equal(have, slices.Sorted(slices.Values(ids))) {
		return tbl, nil
	}
	if len(optional) > 0 && tableRows(tbl) > 0 {
		return nil, fmt.Errorf("%w: %s holds rows and its id columns %v are optional; an upsert table needs required id columns, so use a new table (table.topic.name)",
			errTableConflict, r.name, optional)
	}
	tx := tbl.NewTransaction()
	us := tx.UpdateSchema(true, true)
	for _, name := range optional {
		us.UpdateColumn([]string{name}, table.ColumnUpdate{Required: iceberg.Optional[bool]{Valid: true, Val: true}})
	}
	paths := make([][]string, len(r.cfg.idColumns))
	for i, name := range r.cfg.idColumns {
		paths[i] = []string{name}
	}
	if err := us.SetIdentifierField(paths).Commit(); err != nil {
		return nil, fmt.Errorf("set identifier fields of %s: %w", r.name, err)
	}
	next, err := tx.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("set identifier fields of %s: %w", r.name, err)
	}
	r.svc.cfg.Logger.Info("set the table's identifier fields", "table", r.name, "columns", r.cfg.idColumns)
	return next, nil
}

// checkIDType refuses id column types Iceberg does not allow as
// identifier fields or floe cannot key on.
func checkIDType(name string, t iceberg.Type) error {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.Int64Type, iceberg.StringType, iceberg.BinaryType, iceberg.FixedType,
		iceberg.UUIDType, iceberg.DateType, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType,
		iceberg.BooleanType, iceberg.DecimalType:
		return nil
	}
	return fmt.Errorf("%w: table.topic.id.columns: column %s is %s; an id column must be a primitive, non-floating-point type", ErrConfig, name, t)
}

// tableRows is the current snapshot's total-records (0 without one); an
// unknown count is taken as non-zero.
func tableRows(tbl *table.Table) int64 {
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return 0
	}
	if snap.Summary == nil {
		return math.MaxInt64
	}
	n, err := strconv.ParseInt(snap.Summary.Properties["total-records"], 10, 64)
	if err != nil {
		return math.MaxInt64
	}
	return n
}

// idColumnChanged tells whether proposed alters an id column of current
// (type or nullability); such a record is invalid for a keyed table, as
// the delete files of a round must agree on the key's type.
func idColumnChanged(idColumns []string, current, proposed *iceberg.Schema) string {
	for _, name := range idColumns {
		a, okA := current.FindFieldByName(name)
		b, okB := proposed.FindFieldByName(name)
		if okA && okB && (!a.Type.Equals(b.Type) || a.Required != b.Required) {
			return name
		}
	}
	return ""
}

// rowDelta stages files (data and delete files of upsert rounds) as one
// row delta in tx: one snapshot, one sequence number for all of them.
func rowDelta(ctx context.Context, tx *table.Transaction, tbl *table.Table, files []*writtenFile, props iceberg.Properties) error {
	rd := tx.NewRowDelta(props)
	for _, f := range files {
		df, err := f.dataFile(tbl, nil)
		if err != nil {
			return fmt.Errorf("file %s: %w", f.path, err)
		}
		if f.isDelete() {
			rd.AddDeletes(df)
		} else {
			rd.AddRows(df)
		}
	}
	return rd.Commit(ctx)
}
