// A small Iceberg reader: just enough of the REST catalog protocol and of the
// table spec to list the data files of a snapshot, so that any Parquet engine
// (DuckDB here) can query a table without an Iceberg library of its own.
//
// What it does: GET /v1/config (prefix, storage defaults), GET the table,
// pick the snapshot, read its manifest list and manifests (Avro, via avsc)
// and keep the live data files (manifest entries with status EXISTING or
// ADDED; DELETED entries are files a later snapshot removed).
//
// Delete files are listed with their sequence numbers; query.mjs applies
// position deletes and refuses equality deletes and deletion vectors.

import { readFile } from "node:fs/promises";
import avro from "avsc";

import { getObject, s3ConfigFrom } from "./s3.mjs";

// Manifest entry status (Iceberg spec, "Manifests").
export const STATUS_EXISTING = 0;
export const STATUS_ADDED = 1;
export const STATUS_DELETED = 2;

// Content types of manifests and data files.
const CONTENT_DATA = 0;
export const DATA_FILE_CONTENT = { 0: "data", 1: "position deletes", 2: "equality deletes" };

/**
 * Iceberg longs (snapshot ids, sequence numbers) do not fit a JS number, so
 * Avro longs decode as BigInt.
 */
const bigLong = avro.types.LongType.__with({
  fromBuffer: (buf) => buf.readBigInt64LE(),
  toBuffer: (n) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n) => typeof n === "bigint",
  compare: (a, b) => (a === b ? 0 : a < b ? -1 : 1),
});

/**
 * readAvroFile decodes every record of an Avro object container file.
 * @param {Buffer} buf
 * @returns {Promise<{meta: Record<string, string>, records: any[]}>}
 */
export function readAvroFile(buf) {
  return new Promise((resolve, reject) => {
    const records = [];
    let meta = {};
    const dec = new avro.streams.BlockDecoder({
      // A fresh registry per file: avsc records named types in it.
      parseHook: (schema) => avro.Type.forSchema(schema, { wrapUnions: false, registry: { long: bigLong } }),
    });
    dec.on("metadata", (_type, _codec, header) => {
      meta = Object.fromEntries(Object.entries(header.meta).map(([k, v]) => [k, v.toString()]));
    });
    dec.on("data", (r) => records.push(r));
    dec.on("error", reject);
    dec.on("end", () => resolve({ meta, records }));
    dec.end(buf);
  });
}

/**
 * localPath turns a file:// URI (or a plain path) into a filesystem path.
 * Iceberg writers put paths in as they are, unescaped, so the scheme is
 * stripped rather than URL-decoded.
 * @param {string} uri
 */
export function localPath(uri) {
  if (uri.startsWith("file://")) return uri.slice("file://".length);
  if (uri.startsWith("file:")) return uri.slice("file:".length);
  return uri;
}

export const isS3 = (uri) => /^s3[an]?:\/\//.test(uri);

/** FileIO reads whole files from the local filesystem or S3. */
export class FileIO {
  /** @param {import("./s3.mjs").S3Config} s3 */
  constructor(s3) {
    this.s3 = s3;
  }

  /** @param {string} uri */
  async read(uri) {
    if (isS3(uri)) return getObject(this.s3, uri);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith("file:")) {
      throw new Error(`unsupported storage scheme in ${uri} (this reader knows file:// and s3://)`);
    }
    return readFile(localPath(uri));
  }
}

/**
 * RestCatalog is a read-only client of the Iceberg REST catalog API.
 */
export class RestCatalog {
  /**
   * @param {string} uri base URI, e.g. http://127.0.0.1:8181
   * @param {{token?: string, credential?: string, warehouse?: string,
   *   vendedCredentials?: boolean, headers?: Record<string,string>}} opts
   */
  constructor(uri, opts = {}) {
    this.uri = uri.replace(/\/+$/, "");
    this.opts = opts;
    this.headers = { Accept: "application/json", ...(opts.headers || {}) };
    if (opts.token) this.headers.Authorization = `Bearer ${opts.token}`;
    if (opts.vendedCredentials) this.headers["X-Iceberg-Access-Delegation"] = "vended-credentials";
    /** catalog properties: the server's defaults, then its overrides */
    this.props = {};
    this.prefix = "";
    this.separator = "%1F";
  }

  async #fetchJSON(path, init = {}) {
    const url = this.uri + path;
    const resp = await fetch(url, { ...init, headers: { ...this.headers, ...(init.headers || {}) } });
    const text = await resp.text();
    if (!resp.ok) {
      let msg = text.slice(0, 500);
      try {
        const e = JSON.parse(text).error;
        if (e) msg = `${e.type}: ${e.message}`;
      } catch {
        // not JSON; keep the raw text
      }
      const err = new Error(`${init.method || "GET"} ${url}: HTTP ${resp.status} ${msg}`);
      err.status = resp.status;
      throw err;
    }
    return parseJSON(text);
  }

  /** connect gets a token if asked to, then reads GET /v1/config. */
  async connect() {
    if (this.opts.credential && !this.opts.token) {
      const [id, secret] = this.opts.credential.includes(":")
        ? this.opts.credential.split(/:(.*)/s, 2)
        : [undefined, this.opts.credential];
      const form = new URLSearchParams({ grant_type: "client_credentials", scope: "catalog", client_secret: secret });
      if (id) form.set("client_id", id);
      const tok = await this.#fetchJSON("/v1/oauth/tokens", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: form.toString(),
      });
      this.headers.Authorization = `Bearer ${tok.access_token}`;
    }
    const q = this.opts.warehouse ? `?warehouse=${encodeURIComponent(this.opts.warehouse)}` : "";
    const cfg = await this.#fetchJSON(`/v1/config${q}`);
    this.props = { ...(cfg.defaults || {}), ...(cfg.overrides || {}) };
    if (this.props.uri) this.uri = this.props.uri.replace(/\/+$/, "");
    this.prefix = this.props.prefix ? `/${encodeURIComponent(this.props.prefix)}` : "";
    if (this.props["namespace-separator"]) this.separator = this.props["namespace-separator"];
    return this;
  }

  #nsPath(ns) {
    return ns.map(encodeURIComponent).join(this.separator);
  }

  /**
   * loadTable returns the spec's LoadTableResult for ns.name.
   * @param {string[]} ns
   * @param {string} name
   */
  async loadTable(ns, name) {
    const res = await this.#fetchJSON(
      `/v1${this.prefix}/namespaces/${this.#nsPath(ns)}/tables/${encodeURIComponent(name)}`,
    );
    return res;
  }
}

/**
 * parseIdentifier splits "ns.sub.table" into namespace and name.
 * @param {string} ident
 */
export function parseIdentifier(ident) {
  const parts = ident.split(".");
  if (parts.length < 2 || parts.some((p) => p === "")) {
    throw new Error(`table identifier ${JSON.stringify(ident)} is not NAMESPACE.TABLE`);
  }
  return { namespace: parts.slice(0, -1), name: parts[parts.length - 1] };
}

/**
 * currentSchema returns the table's current schema (format v1 and v2).
 * @param {any} md table metadata
 */
export function currentSchema(md) {
  if (Array.isArray(md.schemas)) {
    const id = md["current-schema-id"] ?? 0;
    const s = md.schemas.find((s) => s["schema-id"] === id);
    if (s) return s;
  }
  if (md.schema) return md.schema;
  throw new Error("table metadata has no current schema");
}

/**
 * pickSnapshot returns the snapshot to read: the one with snapshotId, the
 * head of ref, or the current one; null when the table has none yet.
 * @param {any} md
 * @param {{snapshotId?: string, ref?: string}} sel
 */
export function pickSnapshot(md, sel = {}) {
  const snaps = md.snapshots || [];
  // Ids are compared as text: parseJSON keeps 64-bit ones as strings.
  const byId = (id) => snaps.find((s) => String(s["snapshot-id"]) === String(id));
  let id;
  if (sel.snapshotId !== undefined) {
    id = sel.snapshotId;
  } else if (sel.ref) {
    const ref = md.refs?.[sel.ref];
    if (!ref) throw new Error(`table has no ref ${JSON.stringify(sel.ref)}`);
    id = ref["snapshot-id"];
  } else {
    id = md.refs?.main?.["snapshot-id"] ?? md["current-snapshot-id"];
  }
  if (id === undefined || id === null || String(id) === "-1") return null;
  const snap = byId(id);
  if (!snap) throw new Error(`table has no snapshot ${id}`);
  return snap;
}

/**
 * parseJSON parses JSON keeping 64-bit ids exact: an integer too long for a
 * double to hold (16 digits or more) is read as a string of its digits.
 * Snapshot ids are such integers, and a rounded one names no snapshot.
 * @param {string} text
 */
export function parseJSON(text) {
  let out = "";
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      // Skip the string, escapes included.
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      continue;
    }
    if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j])) j++;
      const tok = text.slice(i, j);
      if (/^-?\d{16,}$/.test(tok)) {
        out += text.slice(last, i) + '"' + tok + '"';
        last = j;
      }
      i = j - 1;
    }
  }
  return JSON.parse(out + text.slice(last));
}

/**
 * planFiles lists the live files of a snapshot, each with its data sequence
 * number (which decides what a delete file applies to).
 * @param {FileIO} io
 * @param {any} snap a snapshot from the table metadata
 * @returns {Promise<{dataFiles: {path: string, format: string, recordCount: bigint, sizeBytes: bigint, seq: bigint}[],
 *   deleteFiles: {path: string, content: string, format: string, recordCount: bigint, seq: bigint}[], manifests: number}>}
 */
export async function planFiles(io, snap) {
  let manifests;
  if (snap["manifest-list"]) {
    const { records } = await readAvroFile(await io.read(snap["manifest-list"]));
    manifests = records.map((m) => ({
      path: m.manifest_path,
      content: m.content ?? CONTENT_DATA, // v1 lists have no content field
      sequenceNumber: m.sequence_number ?? 0n,
    }));
  } else {
    // Format v1 allowed the manifest paths inline in the snapshot.
    manifests = (snap.manifests || []).map((p) => ({ path: p, content: CONTENT_DATA, sequenceNumber: 0n }));
  }

  const dataFiles = [];
  const deleteFiles = [];
  const results = await Promise.all(manifests.map(async (m) => ({ m, f: await readAvroFile(await io.read(m.path)) })));
  for (const { m, f } of results) {
    for (const e of f.records) {
      if (e.status === STATUS_DELETED) continue;
      const df = e.data_file;
      const content = df.content ?? 0;
      const file = {
        path: df.file_path,
        format: String(df.file_format).toUpperCase(),
        recordCount: BigInt(df.record_count),
        sizeBytes: BigInt(df.file_size_in_bytes),
        // A null sequence number is inherited from the manifest (spec:
        // "Sequence Number Inheritance").
        seq: BigInt(e.sequence_number ?? m.sequenceNumber),
      };
      if (m.content !== CONTENT_DATA || content !== 0) {
        deleteFiles.push({ ...file, content: DATA_FILE_CONTENT[content] || `content ${content}` });
      } else {
        dataFiles.push(file);
      }
    }
  }
  return { dataFiles, deleteFiles, manifests: manifests.length };
}

/**
 * openTable loads ident from the catalog and plans the chosen snapshot.
 * @param {{catalog: string, table: string, token?: string, credential?: string,
 *   warehouse?: string, vendedCredentials?: boolean, snapshotId?: string, ref?: string,
 *   s3Props?: Record<string,string>}} opts
 */
export async function openTable(opts) {
  const cat = await new RestCatalog(opts.catalog, opts).connect();
  const { namespace, name } = parseIdentifier(opts.table);
  const res = await cat.loadTable(namespace, name);
  // Catalog defaults < the table's config (vended credentials) < the caller's.
  const s3 = s3ConfigFrom([cat.props, res.config, opts.s3Props]);
  const io = new FileIO(s3);
  let md = res.metadata;
  if (!md && res["metadata-location"]) {
    md = parseJSON((await io.read(res["metadata-location"])).toString("utf8"));
  }
  if (!md) throw new Error(`catalog returned no metadata for ${opts.table}`);
  const snap = pickSnapshot(md, opts);
  const plan = snap ? await planFiles(io, snap) : { dataFiles: [], deleteFiles: [], manifests: 0 };
  return {
    identifier: opts.table,
    name,
    metadataLocation: res["metadata-location"],
    metadata: md,
    schema: currentSchema(md),
    snapshot: snap,
    s3,
    io,
    ...plan,
  };
}
