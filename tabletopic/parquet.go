package tabletopic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// writtenFile is a closed Parquet file waiting for its commit.
type writtenFile struct {
	path   string
	size   int64
	rows   int64
	meta   *metadata.FileMetaData
	schema *iceberg.Schema // the table schema the rows were converted to
	// df is the manifest entry when iceberg-go wrote the file (partitioned
	// tables: it carries the partition record).
	df iceberg.DataFile
	// content is data (the zero value) or, for upsert tables, equality or
	// position deletes; equalityIDs are an equality delete's key columns.
	content     iceberg.ManifestEntryContent
	equalityIDs []int
	// partition holds the partition values of a file floe wrote itself
	// into a partitioned table (upsert tables); nil when unpartitioned.
	partition map[int]any
}

// dataFile builds the manifest entry for f; firstRowID is set for v3 tables.
func (f *writtenFile) dataFile(tbl *table.Table, firstRowID *int64) (iceberg.DataFile, error) {
	if f.df != nil {
		if firstRowID != nil {
			return nil, fmt.Errorf("%w: partitioned format v3 tables are not supported (row lineage)", errTableConflict)
		}
		return f.df, nil
	}
	sortOrder := tbl.SortOrder().OrderID()
	if f.content != iceberg.EntryContentData {
		sortOrder = 0 // delete files are not sorted by the table's order
	}
	return table.DataFileFromMetadata(table.DataFileArgs{
		Schema:           f.schema,
		Spec:             tbl.Spec(),
		Format:           iceberg.ParquetFile,
		Metadata:         f.meta,
		FilePath:         f.path,
		FileSize:         f.size,
		Content:          f.content,
		EqualityFieldIDs: f.equalityIDs,
		PartitionValues:  f.partition,
		SortOrderID:      sortOrder,
		Properties:       tbl.Properties(),
		FormatVersion:    tbl.Metadata().Version(),
		FirstRowID:       firstRowID,
	})
}

// isDelete tells delete files from data files.
func (f *writtenFile) isDelete() bool { return f.content != iceberg.EntryContentData }

// fileSink is where a worker's files for one table go.
type fileSink struct {
	fs  iceio.WriteFileIO
	loc table.LocationProvider
}

func newFileSink(ctx context.Context, tbl *table.Table) (*fileSink, error) {
	// iceberg-go's S3 IO keeps this context for every file it creates; a
	// session's context is cancelled at shutdown, when the workers still
	// close (and the final round commits) their files on purpose.
	fsys, err := tbl.FS(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("table file IO: %w", err)
	}
	wfs, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("table file IO %T cannot write files", fsys)
	}
	loc, err := tbl.LocationProvider()
	if err != nil {
		return nil, err
	}
	return &fileSink{fs: wfs, loc: loc}, nil
}

// parquetWriter writes one data file, streaming it to the object store;
// only the row group being encoded is held in memory.
type parquetWriter struct {
	sink   *fileSink
	path   string
	schema *iceberg.Schema
	out    *countingWriter
	fw     *pqarrow.FileWriter
	rows   int64
}

func writerProperties() *parquet.WriterProperties {
	return parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithStats(true),
		parquet.WithCreatedBy("floe tabletopic"),
	)
}

// openParquetWriter opens the file name (relative to the table's data
// location). Data file names hold the Kafka partition and first offset
// plus a random suffix, so that a retried conversion never overwrites a
// file an earlier, possibly committed, attempt wrote.
func openParquetWriter(sink *fileSink, sc *iceberg.Schema, asc *arrow.Schema, name string) (*parquetWriter, error) {
	path := sink.loc.NewDataLocation(name)
	f, err := sink.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	out := &countingWriter{w: f}
	fw, err := pqarrow.NewFileWriter(asc, out, writerProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		_ = f.Close()
		_ = sink.fs.Remove(path)
		return nil, fmt.Errorf("parquet writer for %s: %w", path, err)
	}
	return &parquetWriter{sink: sink, path: path, schema: sc, out: out, fw: fw}, nil
}

// write encodes rec as one row group.
func (w *parquetWriter) write(rec arrow.RecordBatch) error {
	if err := w.fw.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.rows += rec.NumRows()
	return nil
}

// size is the number of bytes written to the object so far.
func (w *parquetWriter) size() int64 { return w.out.n }

// close finishes the file and returns it.
func (w *parquetWriter) close() (*writtenFile, error) {
	if err := w.fw.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", w.path, err)
	}
	meta, err := w.fw.FileMetadata()
	if err != nil {
		return nil, err
	}
	return &writtenFile{path: w.path, size: w.out.n, rows: w.rows, meta: meta, schema: w.schema}, nil
}

// abort drops an unfinished file; it was never committed, so removing it
// is safe (a failure leaves an orphan for maintenance).
func (w *parquetWriter) abort() {
	_ = w.fw.Close()
	_ = w.sink.fs.Remove(w.path)
}

type countingWriter struct {
	w io.WriteCloser
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Close() error { return c.w.Close() }

// rollingWriter writes a stream of row batches into files of about the
// target size, starting a new file when the size is reached or the
// schema changes.
type rollingWriter struct {
	sink      *fileSink
	partition int32
	target    int64
	cur       *parquetWriter
	done      []*writtenFile
	// partValues and partPath place the files in one partition of a
	// partitioned table (upsert tables; see upsertWriter).
	partValues map[int]any
	partPath   string
}

// write appends rec (rows converted to sc, the first at firstOffset).
func (r *rollingWriter) write(rec arrow.RecordBatch, sc *iceberg.Schema, firstOffset int64) error {
	_, _, err := r.writeRows(rec, sc, firstOffset)
	return err
}

// writeRows is write, telling which file the rows went to and the
// position of the first one in it (all of rec goes to one file).
func (r *rollingWriter) writeRows(rec arrow.RecordBatch, sc *iceberg.Schema, firstOffset int64) (path string, start int64, err error) {
	if r.cur != nil && !r.cur.schema.Equals(sc) {
		if err := r.closeCurrent(); err != nil {
			return "", 0, err
		}
	}
	if r.cur == nil {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		name := fmt.Sprintf("%05d-%020d-%s.parquet", r.partition, firstOffset, hex.EncodeToString(rnd[:]))
		if r.partPath != "" {
			name = r.partPath + "/" + name
		}
		w, err := openParquetWriter(r.sink, sc, rec.Schema(), name)
		if err != nil {
			return "", 0, err
		}
		r.cur = w
	}
	path, start = r.cur.path, r.cur.rows
	if err := r.cur.write(rec); err != nil {
		return "", 0, err
	}
	if r.cur.size() >= r.target {
		return path, start, r.closeCurrent()
	}
	return path, start, nil
}

func (r *rollingWriter) closeCurrent() error {
	if r.cur == nil {
		return nil
	}
	w := r.cur
	r.cur = nil
	f, err := w.close()
	if err != nil {
		w.abort()
		return err
	}
	f.partition = r.partValues
	r.done = append(r.done, f)
	return nil
}

// take returns the closed files and forgets them.
func (r *rollingWriter) take() []*writtenFile {
	out := r.done
	r.done = nil
	return out
}

// abort drops the open file, if any.
func (r *rollingWriter) abort() {
	if r.cur != nil {
		r.cur.abort()
		r.cur = nil
	}
	r.done = nil
}
