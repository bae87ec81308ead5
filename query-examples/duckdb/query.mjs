#!/usr/bin/env node
// query.mjs runs SQL with DuckDB over an Iceberg table of floe's REST catalog
// (a table topic's default.<topic>, or any other table there).
//
//   node query.mjs --catalog http://127.0.0.1:8181 --table default.clicks \
//     --sql "SELECT count(*) FROM clicks"
//
// Each --table becomes a DuckDB view named after the table (default.clicks
// -> clicks) over read_parquet() of the snapshot's live data files, listed by
// iceberg.mjs from the manifests (position deletes applied). Without --sql it prints a summary of one
// table as JSON: rows, data files, and per Kafka partition the row count and
// the sum of _kafka_metadata.offset (or of --sum COLUMN).
//
// DuckDB has an iceberg extension of its own, but extensions are downloaded
// at run time from DuckDB's server; reading the metadata here keeps this
// working offline and shows how little a reader needs.

import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { DuckDBInstance } from "@duckdb/node-api";

import { isS3, localPath, openTable } from "./iceberg.mjs";
import { parseS3URI } from "./s3.mjs";

const usage = `usage: node query.mjs --catalog URI --table NS.TABLE [--table ...] [--sql SQL] [options]

  --catalog URI            Iceberg REST catalog (default $FLOE_CATALOG_URI or http://127.0.0.1:8181)
  --table NS.TABLE         table to query; becomes a view named TABLE (repeatable)
  --sql SQL                query to run; without it, print a JSON summary of the one --table
  --sql-file PATH          read the query from a file
  --sum COLUMN             summary: per partition, sum COLUMN instead of _kafka_metadata.offset
  --format json|table      output of --sql (default json)
  --snapshot-id ID         read this snapshot instead of the current one
  --ref NAME               read the head of this branch or tag
  --files                  print the data files of the snapshot and exit
  --token TOKEN            catalog bearer token
  --credential ID:SECRET   catalog OAuth2 client credentials
  --warehouse NAME         warehouse passed to GET /v1/config
  --vended-credentials     ask the catalog for storage credentials (X-Iceberg-Access-Delegation)
  --s3-endpoint URL, --s3-region R, --s3-access-key-id K, --s3-secret-access-key S,
  --s3-session-token T, --s3-path-style true|false
                           S3 settings (override the catalog's and AWS_* variables)
  --s3-mode auto|httpfs|download
                           how DuckDB reads Parquet on S3: httpfs reads it directly (the
                           extension must be installable), download copies the files to a
                           temporary directory first; auto uses httpfs if already installed`;

// Options that take a value. parseArgs refuses "--sql '-- comment ...'"
// as ambiguous; a query file starting with a comment is normal, so a value
// given as the next argument is joined to its option first.
const valued = new Set(["catalog", "table", "sql", "sql-file", "sum", "format", "snapshot-id", "ref", "token", "credential",
  "warehouse", "s3-endpoint", "s3-region", "s3-access-key-id", "s3-secret-access-key", "s3-session-token",
  "s3-path-style", "s3-mode"]);

function joinValues(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z0-9-]+)$/.exec(argv[i]);
    if (m && valued.has(m[1]) && i + 1 < argv.length) {
      out.push(`--${m[1]}=${argv[++i]}`);
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

function parse(argv) {
  let values;
  try {
    ({ values } = parseArgs({
    args: joinValues(argv),
    options: {
      catalog: { type: "string", default: process.env.FLOE_CATALOG_URI || "http://127.0.0.1:8181" },
      table: { type: "string", multiple: true, default: [] },
      sql: { type: "string" },
      "sql-file": { type: "string" },
      sum: { type: "string" },
      format: { type: "string", default: "json" },
      "snapshot-id": { type: "string" },
      ref: { type: "string" },
      files: { type: "boolean", default: false },
      token: { type: "string" },
      credential: { type: "string" },
      warehouse: { type: "string" },
      "vended-credentials": { type: "boolean", default: false },
      "s3-endpoint": { type: "string" },
      "s3-region": { type: "string" },
      "s3-access-key-id": { type: "string" },
      "s3-secret-access-key": { type: "string" },
      "s3-session-token": { type: "string" },
      "s3-path-style": { type: "string" },
      "s3-mode": { type: "string", default: "auto" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }));
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  if (values.table.length === 0) throw new UsageError("--table is required");
  if (values["sql-file"]) {
    if (values.sql) throw new UsageError("--sql and --sql-file are exclusive");
    values.sql = readFileSync(values["sql-file"], "utf8");
  }
  if (!values.sql && values.table.length !== 1) throw new UsageError("the summary (no --sql) takes exactly one --table");
  if (!["json", "table"].includes(values.format)) throw new UsageError(`--format ${values.format}: want json or table`);
  if (!["auto", "httpfs", "download"].includes(values["s3-mode"])) {
    throw new UsageError(`--s3-mode ${values["s3-mode"]}: want auto, httpfs or download`);
  }
  const s3Props = {};
  for (const k of ["endpoint", "region", "access-key-id", "secret-access-key", "session-token", "path-style"]) {
    const v = values[`s3-${k}`];
    if (v !== undefined) s3Props[k === "path-style" ? "s3.path-style-access" : `s3.${k}`] = v;
  }
  return { ...values, s3Props };
}

class UsageError extends Error {}

/** quoteIdent quotes a DuckDB identifier. */
const quoteIdent = (s) => `"${String(s).replaceAll('"', '""')}"`;
/** quoteLit quotes a DuckDB string literal. */
const quoteLit = (s) => `'${String(s).replaceAll("'", "''")}'`;

/**
 * duckType maps an Iceberg type to DuckDB's, for the columns a snapshot's
 * files do not have yet (added by schema evolution) and for empty tables.
 */
export function duckType(t) {
  if (typeof t === "string") {
    const prim = {
      boolean: "BOOLEAN",
      int: "INTEGER",
      long: "BIGINT",
      float: "FLOAT",
      double: "DOUBLE",
      date: "DATE",
      time: "TIME",
      timestamp: "TIMESTAMP",
      timestamptz: "TIMESTAMPTZ",
      timestamp_ns: "TIMESTAMP_NS",
      timestamptz_ns: "TIMESTAMPTZ",
      string: "VARCHAR",
      uuid: "UUID",
      binary: "BLOB",
    };
    if (prim[t]) return prim[t];
    let m = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
    if (m) return `DECIMAL(${m[1]},${m[2]})`;
    m = /^fixed\[\d+\]$/.exec(t);
    if (m) return "BLOB";
    return "VARCHAR"; // variant, geometry, unknown: readable as text at worst
  }
  switch (t.type) {
    case "struct":
      return `STRUCT(${t.fields.map((f) => `${quoteIdent(f.name)} ${duckType(f.type)}`).join(", ")})`;
    case "list":
      return `${duckType(t.element)}[]`;
    case "map":
      return `MAP(${duckType(t.key)}, ${duckType(t.value)})`;
  }
  throw new Error(`unknown Iceberg type ${JSON.stringify(t)}`);
}

/**
 * S3Files makes the S3 data files of a snapshot readable by DuckDB: through
 * httpfs when it can be loaded, else by copying them to a temporary
 * directory (removed by close).
 */
class S3Files {
  constructor(conn, mode) {
    this.conn = conn;
    this.mode = mode;
    this.httpfs = undefined;
    this.dir = undefined;
    this.secrets = 0;
  }

  async #loadHttpfs() {
    if (this.httpfs !== undefined) return this.httpfs;
    try {
      await this.conn.run("LOAD httpfs");
      this.httpfs = true;
    } catch (err) {
      if (this.mode !== "httpfs") {
        this.httpfs = false;
      } else {
        try {
          await this.conn.run("INSTALL httpfs");
          await this.conn.run("LOAD httpfs");
          this.httpfs = true;
        } catch (err2) {
          throw new Error(
            `--s3-mode httpfs: DuckDB's httpfs extension could not be installed (it is downloaded from ` +
              `DuckDB's extension server): ${err2.message}\nUse --s3-mode download to copy the files instead.`,
          );
        }
      }
    }
    return this.httpfs;
  }

  /** paths returns what read_parquet should read for the given URIs. */
  async paths(tbl, uris) {
    if (this.mode !== "download" && (await this.#loadHttpfs())) {
      const s3 = tbl.s3;
      const opts = ["TYPE s3", `REGION ${quoteLit(s3.region)}`, `URL_STYLE ${quoteLit(s3.pathStyle ? "path" : "vhost")}`];
      if (s3.accessKeyId) opts.push(`KEY_ID ${quoteLit(s3.accessKeyId)}`, `SECRET ${quoteLit(s3.secretAccessKey)}`);
      if (s3.sessionToken) opts.push(`SESSION_TOKEN ${quoteLit(s3.sessionToken)}`);
      if (s3.endpoint) {
        const u = new URL(/^https?:\/\//.test(s3.endpoint) ? s3.endpoint : `https://${s3.endpoint}`);
        opts.push(`ENDPOINT ${quoteLit(u.host)}`, `USE_SSL ${u.protocol === "https:"}`);
      }
      // One secret per bucket, scoped to it, so tables on different
      // stores can be joined. (Untested here: httpfs cannot be installed.)
      for (const b of new Set(uris.map((u) => parseS3URI(u).bucket))) {
        const scoped = [...opts, `SCOPE ${quoteLit(`s3://${b}`)}`];
        await this.conn.run(`CREATE OR REPLACE SECRET floe_s3_${this.secrets++} (${scoped.join(", ")})`);
      }
      return uris.map((u) => u.replace(/^s3[an]:\/\//, "s3://"));
    }
    if (!this.dir) this.dir = await mkdtemp(join(tmpdir(), "floe-duckdb-"));
    const out = new Array(uris.length);
    let next = 0;
    const worker = async () => {
      while (next < uris.length) {
        const i = next++;
        const p = join(this.dir, `${this.secrets}-${i}.parquet`);
        await writeFile(p, await tbl.io.read(uris[i]));
        out[i] = p;
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, uris.length) }, worker));
    this.secrets++;
    return out;
  }

  async close() {
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * readablePaths maps Iceberg file URIs to what read_parquet reads: local
 * paths, or S3 files through S3Files.
 */
async function readablePaths(s3files, tbl, uris) {
  const out = uris.map((u) => (isS3(u) ? null : localPath(u)));
  const remote = uris.filter(isS3);
  if (remote.length) {
    const got = await s3files.paths(tbl, remote);
    let j = 0;
    for (let i = 0; i < out.length; i++) if (out[i] === null) out[i] = got[j++];
  }
  return out;
}

let viewSeq = 0;

/**
 * createView defines a view over tbl's snapshot with the columns of the
 * table's current schema, in its order. Position deletes are applied: a
 * delete file's (file_path, pos) rows hide rows of data files whose data
 * sequence number is not greater than the delete file's.
 */
async function createView(conn, s3files, tbl, viewName) {
  for (const f of tbl.dataFiles) {
    if (f.format !== "PARQUET") throw new Error(`${tbl.identifier}: data file ${f.path} is ${f.format}; only Parquet is read`);
  }
  const unsupported = tbl.deleteFiles.filter((d) => d.content !== "position deletes" || d.format !== "PARQUET");
  if (unsupported.length > 0) {
    const kinds = [...new Set(unsupported.map((d) => `${d.content} in ${d.format}`))].join(", ");
    throw new Error(
      `${tbl.identifier}: the snapshot has ${unsupported.length} delete files this reader cannot apply (${kinds}); ` +
        `only Parquet position deletes are, and reading the data files alone would be wrong`,
    );
  }
  const fields = tbl.schema.fields;
  const nullCol = (f) => `CAST(NULL AS ${duckType(f.type)}) AS ${quoteIdent(f.name)}`;
  if (tbl.dataFiles.length === 0) {
    await conn.run(`CREATE OR REPLACE VIEW ${quoteIdent(viewName)} AS SELECT ${fields.map(nullCol).join(", ")} WHERE false`);
    return;
  }
  const paths = await readablePaths(s3files, tbl, tbl.dataFiles.map((f) => f.path));
  const deletes = tbl.deleteFiles;
  if (deletes.length > 0 && fields.some((f) => f.name === "__floe_file" || f.name === "file_row_number")) {
    throw new Error(`${tbl.identifier}: a column named __floe_file or file_row_number clashes with the position-delete columns`);
  }
  // union_by_name: files written before a column was added lack it.
  const fileCols = deletes.length > 0 ? ", filename = '__floe_file', file_row_number = true" : "";
  const source = `read_parquet([${paths.map(quoteLit).join(", ")}], union_by_name = true${fileCols})`;
  const described = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`);
  const present = new Set(described.getRowObjects().map((r) => r.column_name));
  const cols = fields.map((f) => (present.has(f.name) ? `d.${quoteIdent(f.name)}` : nullCol(f)));
  if (deletes.length === 0) {
    await conn.run(`CREATE OR REPLACE VIEW ${quoteIdent(viewName)} AS SELECT ${cols.join(", ")} FROM ${source} d`);
    return;
  }
  const delPaths = await readablePaths(s3files, tbl, deletes.map((d) => d.path));
  const delRows = delPaths
    .map((p, i) => `SELECT file_path, pos, ${deletes[i].seq}::BIGINT AS seq FROM read_parquet(${quoteLit(p)})`)
    .join(" UNION ALL ");
  const files = tbl.dataFiles.map((f, i) => `(${quoteLit(f.path)}, ${quoteLit(paths[i])}, ${f.seq}::BIGINT)`).join(", ");
  const delTable = quoteIdent(`__floe_position_deletes_${viewSeq++}`);
  await conn.run(
    `CREATE OR REPLACE TABLE ${delTable} AS
       SELECT f.local AS file, x.pos AS pos
         FROM (${delRows}) x
         JOIN (VALUES ${files}) f(uri, local, seq) ON f.uri = x.file_path AND f.seq <= x.seq`,
  );
  await conn.run(
    `CREATE OR REPLACE VIEW ${quoteIdent(viewName)} AS
       SELECT ${cols.join(", ")} FROM ${source} d
       ANTI JOIN ${delTable} del ON del.file = d.__floe_file AND del.pos = d.file_row_number`,
  );
}

// JSON output that keeps 64-bit integers exact: BigInts are written as bare
// integer literals, which JSON allows at any size.
const BIG = "__floe_bigint__:";
function toJSON(v, indent = 2) {
  const text = JSON.stringify(
    v,
    (_k, x) => (typeof x === "bigint" ? BIG + x.toString() : x),
    indent,
  );
  return text.replace(new RegExp(`"${BIG}(-?\\d+)"`, "g"), "$1");
}

/** plain turns a DuckDB value into a JSON-friendly one. */
function plain(v) {
  if (v === null || typeof v === "bigint" || typeof v === "number" || typeof v === "string" || typeof v === "boolean") {
    return v;
  }
  // DuckDB value objects (decimal, hugeint wrappers...) print themselves.
  const s = String(v);
  return /^-?\d+$/.test(s) ? BigInt(s) : /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(s) ? Number(s) : s;
}

async function summary(conn, tbl, viewName, sumCol) {
  const sumExpr = sumCol ? `sum(${quoteIdent(sumCol)})` : `sum(_kafka_metadata."offset")`;
  const r = await conn.runAndReadAll(
    `SELECT _kafka_metadata."partition" AS p, count(*) AS n, ${sumExpr} AS s
       FROM ${quoteIdent(viewName)} GROUP BY 1 ORDER BY 1`,
  );
  const partitions = r.getRowObjects().map((row) => {
    const out = { partition: plain(row.p), rows: plain(row.n) };
    out[sumCol ? "sum" : "offset_sum"] = plain(row.s);
    return out;
  });
  const rows = partitions.reduce((a, p) => a + BigInt(p.rows), 0n);
  return {
    table: tbl.identifier,
    snapshot_id: tbl.snapshot ? BigInt(tbl.snapshot["snapshot-id"]) : null,
    data_files: tbl.dataFiles.length,
    delete_files: tbl.deleteFiles.length,
    manifests: tbl.manifests,
    manifest_records: tbl.dataFiles.reduce((a, f) => a + f.recordCount, 0n),
    rows,
    ...(sumCol ? { sum_column: sumCol } : {}),
    partitions,
  };
}

function printTable(reader) {
  const names = reader.columnNames();
  const rows = reader.getRowsJson().map((r) => r.map((v) => (v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v))));
  const widths = names.map((n, i) => Math.max(n.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  console.log(line(names));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(r));
  console.log(`(${rows.length} row${rows.length === 1 ? "" : "s"})`);
}

async function main() {
  const opts = parse(process.argv.slice(2));
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const s3files = new S3Files(conn, opts["s3-mode"]);
  try {
    const tables = [];
    for (const ident of opts.table) {
      const tbl = await openTable({
        catalog: opts.catalog,
        table: ident,
        token: opts.token,
        credential: opts.credential,
        warehouse: opts.warehouse,
        vendedCredentials: opts["vended-credentials"],
        snapshotId: opts["snapshot-id"],
        ref: opts.ref,
        s3Props: opts.s3Props,
      });
      if (opts.files) {
        console.log(toJSON({ table: ident, data_files: tbl.dataFiles, delete_files: tbl.deleteFiles }));
        continue;
      }
      await createView(conn, s3files, tbl, tbl.name);
      tables.push(tbl);
    }
    if (opts.files) return;
    if (!opts.sql) {
      console.log(toJSON(await summary(conn, tables[0], tables[0].name, opts.sum)));
      return;
    }
    const reader = await conn.runAndReadAll(opts.sql);
    if (opts.format === "table") {
      printTable(reader);
      return;
    }
    // Integers stay numbers (exact, however large); other values as DuckDB
    // renders them in JSON (timestamps and decimals as text, blobs escaped).
    const types = reader.columnTypes().map(String);
    const ints = new Set(["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"]);
    const names = reader.columnNames();
    const rows = reader.getRowsJson().map((r) =>
      Object.fromEntries(r.map((v, i) => [names[i], ints.has(types[i]) && v !== null ? BigInt(v) : v])),
    );
    console.log(toJSON(rows));
  } finally {
    await s3files.close();
    conn.closeSync();
    instance.closeSync();
  }
}

main().catch((err) => {
  // The stack only helps when debugging the script itself.
  const detail = process.env.FLOE_QUERY_DEBUG ? err.stack : err.message;
  console.error(`query.mjs: ${err instanceof UsageError ? `${err.message}\n\n${usage}` : detail}`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
