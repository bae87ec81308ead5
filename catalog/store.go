package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	icebergcatalog "github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// catalogName is the catalog_name every row of ours carries in the SQL
// catalog's tables; one database can hold several catalogs.
const catalogName = "floe"

// store holds the database handle shared with iceberg-go's SQL catalog and
// the few statements this package runs itself: the metadata-pointer swap of
// (multi-)table commits and table registration, neither of which the SQL
// catalog offers in a form that spans tables.
type store struct {
	db       *sql.DB
	postgres bool
}

// openDB opens the catalog database. SQLite gets WAL (readers never block the
// writer), a busy timeout (writers queue instead of failing at once) and
// BEGIN IMMEDIATE for write transactions (a transaction that reads and then
// writes cannot fail to upgrade its lock halfway).
func openDB(driver, dsn string) (*store, sqlcat.SupportedDialect, error) {
	if dsn == "" {
		return nil, "", errors.New("catalog: DBDSN is required")
	}
	switch driver {
	case "", "sqlite":
		if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
			// Every pooled connection would see its own empty database.
			return nil, "", errors.New("catalog: an in-memory SQLite database cannot back the catalog; give a file path")
		}
		db, err := sql.Open("sqlite", sqliteDSN(dsn))
		if err != nil {
			return nil, "", fmt.Errorf("catalog: open sqlite: %w", err)
		}
		return &store{db: db}, sqlcat.SQLite, nil
	case "postgres", "pgx":
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, "", fmt.Errorf("catalog: open postgres: %w", err)
		}
		db.SetMaxOpenConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		return &store{db: db, postgres: true}, sqlcat.Postgres, nil
	default:
		return nil, "", fmt.Errorf("catalog: unsupported DBDriver %q (want sqlite or postgres)", driver)
	}
}

func sqliteDSN(dsn string) string {
	name, rawQuery, _ := strings.Cut(dsn, "?")
	if !strings.HasPrefix(name, "file:") {
		name = "file:" + name
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		q = url.Values{}
	}
	setDefault := func(k, v string) {
		if q.Get(k) == "" {
			q.Set(k, v)
		}
	}
	setDefault("_busy_timeout", "10000")
	setDefault("_journal_mode", "WAL")
	setDefault("_txlock", "immediate")
	return name + "?" + q.Encode()
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (s *store) rebind(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pointerSwap is one table's part of an atomic commit.
type pointerSwap struct {
	ident table.Identifier
	// prevLocation is the metadata location the commit was validated
	// against; "" means the table must not exist yet (assert-create).
	prevLocation string
	// newLocation is the metadata file to point at; equal to prevLocation for
	// a table whose requirements must still hold but whose metadata did not
	// change (it is asserted, not rewritten).
	newLocation string
}

// swapPointers moves every table's metadata pointer in one database
// transaction, each conditional on the location the commit was validated
// against. Rows are touched in a fixed order so two multi-table commits
// cannot deadlock on PostgreSQL. Any pointer that moved fails the whole
// transaction with ErrCommitConflict and nothing is changed. errUnknown
// reports whether the outcome is unknown (the COMMIT itself failed), in which
// case the new metadata files must be kept.
func (s *store) swapPointers(ctx context.Context, swaps []pointerSwap) (errUnknown bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, s.contention(fmt.Errorf("begin commit transaction: %w", err))
	}
	defer func() {
		if err != nil && !errUnknown {
			_ = tx.Rollback()
		}
	}()
	ordered := slices.Clone(swaps)
	slices.SortFunc(ordered, func(a, b pointerSwap) int {
		return strings.Compare(identKey(a.ident), identKey(b.ident))
	})
	for _, sw := range ordered {
		ns, name := namespaceKey(sw.ident[:len(sw.ident)-1]), sw.ident[len(sw.ident)-1]
		if sw.prevLocation == "" {
			if err := s.insertTable(ctx, tx, sw.ident, sw.newLocation); err != nil {
				return false, err
			}
			continue
		}
		var res sql.Result
		if sw.newLocation == sw.prevLocation {
			// Asserted only: the row must still point where it did, and
			// previous_metadata_location stays as it was.
			res, err = tx.ExecContext(ctx, s.rebind(`UPDATE iceberg_tables
				SET metadata_location = metadata_location
				WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
				  AND metadata_location = ? AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)`),
				catalogName, ns, name, sw.prevLocation)
		} else {
			res, err = tx.ExecContext(ctx, s.rebind(`UPDATE iceberg_tables
				SET metadata_location = ?, previous_metadata_location = ?
				WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
				  AND metadata_location = ? AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)`),
				sw.newLocation, sw.prevLocation, catalogName, ns, name, sw.prevLocation)
		}
		if err != nil {
			return false, s.contention(fmt.Errorf("update metadata pointer of %s: %w", strings.Join(sw.ident, "."), err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, fmt.Errorf("update metadata pointer of %s: %w", strings.Join(sw.ident, "."), err)
		}
		if n == 0 {
			return false, fmt.Errorf("%w: table %s changed or was dropped concurrently",
				ErrCommitConflict, strings.Join(sw.ident, "."))
		}
	}
	if err := tx.Commit(); err != nil {
		return true, fmt.Errorf("commit transaction: %w", err)
	}
	return false, nil
}

// insertTable adds a table row inside tx, failing with ErrCommitConflict if
// the name is taken and with ErrNoSuchNamespace if the namespace is gone.
func (s *store) insertTable(ctx context.Context, tx *sql.Tx, ident table.Identifier, location string) error {
	ns, name := namespaceKey(ident[:len(ident)-1]), ident[len(ident)-1]
	exists, err := s.namespaceExists(ctx, tx, ns)
	if err != nil {
		return s.contention(err)
	}
	if !exists {
		return fmt.Errorf("%w: %s", icebergcatalog.ErrNoSuchNamespace, strings.Join(ident[:len(ident)-1], "."))
	}
	var one int
	err = tx.QueryRowContext(ctx, s.rebind(`SELECT 1 FROM iceberg_tables
		WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?`), catalogName, ns, name).Scan(&one)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %w: %s", ErrCommitConflict, icebergcatalog.ErrTableAlreadyExists, strings.Join(ident, "."))
	case !errors.Is(err, sql.ErrNoRows):
		return s.contention(fmt.Errorf("check table %s: %w", strings.Join(ident, "."), err))
	}
	_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO iceberg_tables
		(catalog_name, table_namespace, table_name, iceberg_type, metadata_location, previous_metadata_location)
		VALUES (?, ?, ?, 'TABLE', ?, NULL)`), catalogName, ns, name, location)
	if err != nil {
		// A concurrent creator that slipped between the check and the insert
		// trips the primary key; report it as the conflict it is.
		return fmt.Errorf("%w: insert table %s: %w", ErrCommitConflict, strings.Join(ident, "."), err)
	}
	return nil
}

func (s *store) namespaceExists(ctx context.Context, tx *sql.Tx, ns string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, s.rebind(`SELECT 1 FROM iceberg_namespace_properties
		WHERE catalog_name = ? AND namespace = ? LIMIT 1`), catalogName, ns).Scan(&one)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("check namespace %s: %w", ns, err)
	}
	err = tx.QueryRowContext(ctx, s.rebind(`SELECT 1 FROM iceberg_tables
		WHERE catalog_name = ? AND table_namespace = ? LIMIT 1`), catalogName, ns).Scan(&one)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("check namespace %s: %w", ns, err)
	}
	return false, nil
}

// registerTable points a new (or, with overwrite, an existing) table row at
// an existing metadata file.
func (s *store) registerTable(ctx context.Context, ident table.Identifier, location string, overwrite bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin register transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if overwrite {
		ns, name := namespaceKey(ident[:len(ident)-1]), ident[len(ident)-1]
		res, err := tx.ExecContext(ctx, s.rebind(`UPDATE iceberg_tables
			SET previous_metadata_location = metadata_location, metadata_location = ?
			WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
			  AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)`), location, catalogName, ns, name)
		if err != nil {
			return fmt.Errorf("register table %s: %w", strings.Join(ident, "."), err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return tx.Commit()
		}
	}
	if err := s.insertTable(ctx, tx, ident, location); err != nil {
		if errors.Is(err, icebergcatalog.ErrTableAlreadyExists) {
			return fmt.Errorf("%w: %s", icebergcatalog.ErrTableAlreadyExists, strings.Join(ident, "."))
		}
		if errors.Is(err, ErrCommitConflict) {
			// Lost a race with a concurrent create of the same name.
			return fmt.Errorf("%w: %s", icebergcatalog.ErrTableAlreadyExists, strings.Join(ident, "."))
		}
		return err
	}
	return tx.Commit()
}

// contention turns a lock timeout, serialization failure or deadlock into
// ErrCommitConflict: the transaction was rolled back and nothing was
// committed, so the client may refresh and retry.
func (s *store) contention(err error) error {
	var stateErr interface{ SQLState() string }
	if errors.As(err, &stateErr) {
		switch stateErr.SQLState() {
		case "40001", "40P01", "55P03":
			return fmt.Errorf("%w: concurrent catalog update: %w", ErrCommitConflict, err)
		}
	}
	msg := err.Error()
	if strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY") {
		return fmt.Errorf("%w: concurrent catalog update: %w", ErrCommitConflict, err)
	}
	return err
}
