// A minimal S3 GET client: AWS Signature Version 4 over Node's fetch.
//
// It exists because DuckDB's httpfs extension is downloaded from DuckDB's
// extension server on first use, which is not reachable everywhere (it is not
// on floe's CI machines). Reading Iceberg metadata and, when httpfs is
// missing, data files only needs signed GETs, which are a few lines.

import { createHash, createHmac } from "node:crypto";

/**
 * S3 settings, using the Iceberg FileIO property names a REST catalog hands
 * out (s3.endpoint, s3.region, s3.access-key-id, ...).
 * @typedef {{endpoint?: string, region?: string, accessKeyId?: string,
 *   secretAccessKey?: string, sessionToken?: string, pathStyle?: boolean}} S3Config
 */

/**
 * s3ConfigFrom merges Iceberg properties (later sources win) and the
 * standard AWS environment variables (used only where no property is set).
 * @param {Record<string, string>[]} propSets
 * @param {NodeJS.ProcessEnv} env
 * @returns {S3Config}
 */
export function s3ConfigFrom(propSets, env = process.env) {
  const p = Object.assign({}, ...propSets.filter(Boolean));
  const cfg = {
    endpoint: p["s3.endpoint"] || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
    region: p["s3.region"] || p["client.region"] || env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    accessKeyId: p["s3.access-key-id"] || env.AWS_ACCESS_KEY_ID || undefined,
    secretAccessKey: p["s3.secret-access-key"] || env.AWS_SECRET_ACCESS_KEY || undefined,
    sessionToken: p["s3.session-token"] || (p["s3.access-key-id"] ? undefined : env.AWS_SESSION_TOKEN) || undefined,
  };
  if (p["s3.path-style-access"] !== undefined) {
    cfg.pathStyle = p["s3.path-style-access"] === "true";
  } else if (p["s3.force-virtual-addressing"] !== undefined) {
    cfg.pathStyle = p["s3.force-virtual-addressing"] !== "true";
  } else {
    // A custom endpoint (MinIO, versitygw, ...) almost always wants
    // path-style addressing; AWS itself wants virtual-hosted.
    cfg.pathStyle = Boolean(cfg.endpoint);
  }
  return cfg;
}

/**
 * parseS3URI splits s3://bucket/key (also s3a://, s3n://).
 * @param {string} uri
 */
export function parseS3URI(uri) {
  const m = /^s3[an]?:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  return { bucket: m[1], key: m[2] };
}

// RFC 3986 encoding as SigV4 wants it; S3 keys keep their slashes.
function encodeKey(key) {
  return key
    .split("/")
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase()))
    .join("/");
}

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const hmac = (k, s) => createHmac("sha256", k).update(s).digest();

/**
 * objectURL returns the HTTP URL of bucket/key under cfg's addressing.
 * @param {S3Config} cfg
 */
export function objectURL(cfg, bucket, key) {
  let base = cfg.endpoint || `https://s3.${cfg.region}.amazonaws.com`;
  if (!/^https?:\/\//.test(base)) base = "https://" + base;
  const u = new URL(base);
  const prefix = u.pathname.replace(/\/+$/, "");
  if (cfg.pathStyle) {
    u.pathname = `${prefix}/${bucket}/${encodeKey(key)}`;
  } else {
    u.hostname = `${bucket}.${u.hostname}`;
    u.pathname = `${prefix}/${encodeKey(key)}`;
  }
  return u;
}

/**
 * signedHeaders signs a GET of url with SigV4 (unsigned payload). Without
 * credentials the request goes out anonymous.
 * @param {S3Config} cfg
 * @param {URL} url
 */
export function signedHeaders(cfg, url, now = new Date()) {
  if (!cfg.accessKeyId || !cfg.secretAccessKey) return {};
  const amzDate = now.toISOString().replace(/[:-]|\.\d{3}/g, "");
  const day = amzDate.slice(0, 8);
  const headers = {
    host: url.host,
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    "x-amz-date": amzDate,
  };
  if (cfg.sessionToken) headers["x-amz-security-token"] = cfg.sessionToken;
  const names = Object.keys(headers).sort();
  const canonical = [
    "GET",
    url.pathname,
    "", // no query string
    ...names.map((n) => `${n}:${headers[n]}`),
    "",
    names.join(";"),
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const scope = `${day}/${cfg.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  let key = hmac("AWS4" + cfg.secretAccessKey, day);
  key = hmac(key, cfg.region);
  key = hmac(key, "s3");
  key = hmac(key, "aws4_request");
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  delete headers.host; // fetch sets it
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${cfg.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return headers;
}

/**
 * getObject reads s3://bucket/key whole.
 * @param {S3Config} cfg
 * @param {string} uri
 * @returns {Promise<Buffer>}
 */
export async function getObject(cfg, uri) {
  const { bucket, key } = parseS3URI(uri);
  const url = objectURL(cfg, bucket, key);
  const resp = await fetch(url, { headers: signedHeaders(cfg, url) });
  if (!resp.ok) {
    const body = (await resp.text()).slice(0, 500);
    throw new Error(`GET ${uri} (${url}): HTTP ${resp.status} ${body}`);
  }
  return Buffer.from(await resp.arrayBuffer());
}
