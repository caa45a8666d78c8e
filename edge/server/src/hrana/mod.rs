//! `cloudos db serve`: Hrana over HTTP (v2 and v3: pipeline, batons, cursor) on an embedded
//! libSQL file, so `wrangler dev` has a libSQL server to talk to. A development stand-in for
//! Turso: the protocol is the same, the operations side (replicas, backups, auth) is not.

mod exec;
mod streams;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use libsql_hrana::proto::{
    BatchStreamResp, CloseSqlStreamResp, CloseStreamResp, CursorEntry, CursorReqBody,
    CursorRespBody, DescribeStreamResp, Error, ExecuteStreamResp, GetAutocommitStreamResp,
    PipelineReqBody, PipelineRespBody, SequenceStreamResp, StepBeginEntry, StepEndEntry,
    StepErrorEntry, StoreSqlStreamResp, StreamRequest, StreamResponse, StreamResult,
};
use serde::Serialize;

use crate::settings::DbServeArgs;
use exec::error;
use streams::{Stream, Streams};
use subtle::ConstantTimeEq;

/// How long a stream may sit unused before it is closed (sqld uses the same).
const STREAM_IDLE: Duration = Duration::from_secs(10);
/// Most streams open at once.
const MAX_STREAMS: usize = 256;

#[derive(Clone)]
struct Db {
    streams: Arc<Streams>,
    token: Option<Arc<str>>,
}

/// Opens the database under `args.data` and serves Hrana until `shutdown` resolves.
pub async fn serve(
    args: DbServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let path = args.data.join("cloudos.db");
    let db = libsql::Builder::new_local(&path)
        .build()
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    db.connect()?
        .query("PRAGMA journal_mode = WAL", ())
        .await
        .context("turning on WAL")?;
    let token = args.auth_token.filter(|t| !t.is_empty());
    if token.is_none() && !args.no_auth {
        anyhow::bail!(
            "cloudos db serve needs a token (--auth-token or CLOUDOS_DB_AUTH_TOKEN); --no-auth serves the database to anything that can reach {}",
            args.addr
        );
    }
    let router = router(db, token);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, url = %format!("http://{addr}"), db = %path.display(), "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving")?;
    Ok(())
}

/// The Hrana HTTP routes over `db`; with `token`, every request must bear it.
pub fn router(db: libsql::Database, token: Option<String>) -> Router {
    let state = Db {
        streams: Arc::new(Streams::new(db, STREAM_IDLE, MAX_STREAMS)),
        token: token.map(Arc::from),
    };
    // Clients probe the versions without credentials (as with sqld); statements need them.
    let statements = Router::new()
        .route("/v2/pipeline", post(pipeline::<AsJson>))
        .route("/v3/pipeline", post(pipeline::<AsJson>))
        .route("/v3/cursor", post(cursor::<AsJson>))
        .route("/v3-protobuf/pipeline", post(pipeline::<AsProtobuf>))
        .route("/v3-protobuf/cursor", post(cursor::<AsProtobuf>))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/", get(ok))
        .route("/health", get(ok))
        .route("/version", get(version))
        .route("/v2", get(ok))
        .route("/v3", get(ok))
        .route("/v3-protobuf", get(ok))
        .merge(statements)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn ok() -> &'static str {
    ""
}

async fn version() -> String {
    format!("cloudos-hrana {}", env!("CARGO_PKG_VERSION"))
}

/// A failure of the whole request, as sqld answers it: a status and `{message, code}`.
fn reject(status: StatusCode, e: Error) -> Response {
    (status, Json(e)).into_response()
}

async fn authorize(State(db): State<Db>, req: Request, next: Next) -> Response {
    // Database clients send no Origin; a browser always does on a cross-site POST. Refusing
    // it means no web page can drive this endpoint, token or not.
    if req.headers().contains_key(header::ORIGIN) {
        return reject(
            StatusCode::FORBIDDEN,
            error("FORBIDDEN", "requests from web pages are not served"),
        );
    }
    if let Some(token) = &db.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Constant time: how much of a guess matched must not show in the answer's timing.
        let matches: bool = given.as_bytes().ct_eq(token.as_bytes()).into();
        if !matches {
            return reject(
                StatusCode::UNAUTHORIZED,
                error("AUTH_FAILED", "missing or wrong bearer token"),
            );
        }
    }
    next.run(req).await
}

/// How a request and its answer are encoded: JSON (`/v2`, `/v3`) or Protobuf (`/v3-protobuf`,
/// the only v3 flavour @libsql/hrana-client speaks).
trait Encoding {
    const CONTENT_TYPE: &'static str;
    fn decode<T: serde::de::DeserializeOwned + prost::Message + Default>(
        body: &[u8],
    ) -> Result<T, String>;
    fn encode<T: Serialize + prost::Message>(value: &T) -> Vec<u8>;
    /// One item of a cursor answer: a line of JSON, or a length-delimited message.
    fn frame<T: Serialize + prost::Message>(out: &mut Vec<u8>, item: &T);
    /// One entry of a cursor answer.
    fn entry(out: &mut Vec<u8>, entry: CursorEntry) {
        Self::frame(out, &entry);
    }
}

/// JSON: `/v2` and `/v3`.
struct AsJson;
/// Protobuf: `/v3-protobuf`.
struct AsProtobuf;

impl Encoding for AsJson {
    const CONTENT_TYPE: &'static str = "application/json";
    fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
        // Whatever the Content-Type says: the Rust client sends none.
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        // These protocol types hold no maps with non-string keys: serializing cannot fail.
        serde_json::to_vec(value).unwrap_or_default()
    }
    fn frame<T: Serialize>(out: &mut Vec<u8>, item: &T) {
        json_line(out, item);
    }
    fn entry(out: &mut Vec<u8>, entry: CursorEntry) {
        match entry {
            CursorEntry::StepEnd(end) => json_line(
                out,
                &StepEnd {
                    affected_row_count: end.affected_row_count,
                    last_insert_rowid: end.last_insert_rowid.map(|id| id.to_string()),
                },
            ),
            other => json_line(out, &other),
        }
    }
}

impl Encoding for AsProtobuf {
    const CONTENT_TYPE: &'static str = "application/x-protobuf";
    fn decode<T: prost::Message + Default>(body: &[u8]) -> Result<T, String> {
        T::decode(body).map_err(|e| e.to_string())
    }
    fn encode<T: prost::Message>(value: &T) -> Vec<u8> {
        value.encode_to_vec()
    }
    fn frame<T: prost::Message>(out: &mut Vec<u8>, item: &T) {
        proto_frame(out, item);
    }
    fn entry(out: &mut Vec<u8>, entry: CursorEntry) {
        match entry {
            CursorEntry::StepEnd(end) => proto_frame(
                out,
                &StepEndProto {
                    step_end: Some(StepEndFields {
                        affected_row_count: end.affected_row_count,
                        // Two's complement, as a uint64 carries a negative rowid.
                        last_insert_rowid: end.last_insert_rowid.map(|id| id as u64),
                    }),
                },
            ),
            other => Self::frame(out, &other),
        }
    }
}

fn proto_frame(out: &mut Vec<u8>, item: &impl prost::Message) {
    // Encoding into a Vec only fails when the buffer is full, which a Vec never is.
    let _ = item.encode_length_delimited(out);
}

/// A cursor entry holding `step_end` (field 2) in Protobuf as @libsql/hrana-client reads it:
/// the rowid as uint64. libsql-hrana 0.10 writes a sint64, which that client reads doubled.
#[derive(Clone, PartialEq, prost::Message)]
struct StepEndProto {
    #[prost(message, optional, tag = "2")]
    step_end: Option<StepEndFields>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StepEndFields {
    #[prost(uint64, tag = "1")]
    affected_row_count: u64,
    #[prost(uint64, optional, tag = "2")]
    last_insert_rowid: Option<u64>,
}

fn json_line(out: &mut Vec<u8>, item: &impl Serialize) {
    if serde_json::to_writer(&mut *out, item).is_ok() {
        out.push(b'\n');
    }
}

/// `step_end` as the Hrana spec and both official clients read it in JSON: the rowid as a
/// string (libsql-hrana 0.10's `StepEndEntry` writes a number, which @libsql/hrana-client rejects).
#[derive(Serialize)]
#[serde(tag = "type", rename = "step_end")]
struct StepEnd {
    affected_row_count: u64,
    last_insert_rowid: Option<String>,
}

fn decode<E: Encoding, T: serde::de::DeserializeOwned + prost::Message + Default>(
    body: &[u8],
) -> Result<T, Error> {
    E::decode(body).map_err(|e| error("HTTP_PARSE_ERROR", format!("bad request body: {e}")))
}

fn answer<E: Encoding>(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, E::CONTENT_TYPE)], body).into_response()
}

async fn pipeline<E: Encoding>(State(db): State<Db>, body: Bytes) -> Response {
    let req: PipelineReqBody = match decode::<E, _>(&body) {
        Ok(r) => r,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let mut stream = match db.streams.take(req.baton.as_deref()).await {
        Ok(s) => s,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let mut results = Vec::with_capacity(req.requests.len());
    let mut closed = false;
    for r in req.requests {
        if closed {
            results.push(StreamResult::Error {
                error: error(
                    "STREAM_CLOSED",
                    "the stream was closed earlier in this pipeline",
                ),
            });
            continue;
        }
        if matches!(r, StreamRequest::Close(_)) {
            closed = true;
        }
        results.push(match handle(&mut stream, r).await {
            Ok(response) => StreamResult::Ok { response },
            Err(error) => StreamResult::Error { error },
        });
    }
    let baton = if closed {
        None
    } else {
        match db.streams.put(stream) {
            Ok(b) => Some(b),
            Err(e) => return reject(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    };
    answer::<E>(E::encode(&PipelineRespBody {
        baton,
        base_url: None,
        results,
    }))
}

async fn handle(stream: &mut Stream, req: StreamRequest) -> Result<StreamResponse, Error> {
    let conn = &stream.conn;
    Ok(match req {
        StreamRequest::Execute(r) => StreamResponse::Execute(ExecuteStreamResp {
            result: exec::execute(conn, &r.stmt, &stream.sqls).await?,
        }),
        StreamRequest::Batch(r) => StreamResponse::Batch(BatchStreamResp {
            result: exec::batch(conn, &r.batch, &stream.sqls).await?,
        }),
        StreamRequest::Sequence(r) => {
            let sql = exec::sql_text(r.sql.as_deref(), r.sql_id, &stream.sqls)?;
            conn.execute_batch(sql).await.map_err(exec::sql_error)?;
            StreamResponse::Sequence(SequenceStreamResp {})
        }
        StreamRequest::Describe(r) => {
            let sql = exec::sql_text(r.sql.as_deref(), r.sql_id, &stream.sqls)?;
            StreamResponse::Describe(DescribeStreamResp {
                result: exec::describe(conn, sql).await?,
            })
        }
        StreamRequest::StoreSql(r) => {
            stream.sqls.insert(r.sql_id, r.sql);
            StreamResponse::StoreSql(StoreSqlStreamResp {})
        }
        StreamRequest::CloseSql(r) => {
            stream.sqls.remove(&r.sql_id);
            StreamResponse::CloseSql(CloseSqlStreamResp {})
        }
        StreamRequest::GetAutocommit(_) => StreamResponse::GetAutocommit(GetAutocommitStreamResp {
            is_autocommit: conn.is_autocommit(),
        }),
        StreamRequest::Close(_) => StreamResponse::Close(CloseStreamResp {}),
        StreamRequest::None => return Err(error("REQUEST_INVALID", "unknown request type")),
    })
}

/// `/v3/cursor`: a batch whose results come back as a sequence of entries: the baton first,
/// then for each step that ran, its columns, its rows and its end (or its error).
async fn cursor<E: Encoding>(State(db): State<Db>, body: Bytes) -> Response {
    let req: CursorReqBody = match decode::<E, _>(&body) {
        Ok(r) => r,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let stream = match db.streams.take(req.baton.as_deref()).await {
        Ok(s) => s,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    let outcome = exec::batch(&stream.conn, &req.batch, &stream.sqls).await;
    let baton = match db.streams.put(stream) {
        Ok(b) => b,
        Err(e) => return reject(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let head = CursorRespBody {
        baton: Some(baton),
        base_url: None,
    };
    let mut out = Vec::new();
    E::frame(&mut out, &head);
    match outcome {
        Ok(result) => {
            let steps = result.step_results.into_iter().zip(result.step_errors);
            for (step, (ok, err)) in (0u32..).zip(steps) {
                if let Some(r) = ok {
                    E::entry(
                        &mut out,
                        CursorEntry::StepBegin(StepBeginEntry { step, cols: r.cols }),
                    );
                    for row in r.rows {
                        E::entry(&mut out, CursorEntry::Row { row });
                    }
                    E::entry(
                        &mut out,
                        CursorEntry::StepEnd(StepEndEntry {
                            affected_row_count: r.affected_row_count,
                            last_insert_rowid: r.last_insert_rowid,
                        }),
                    );
                } else if let Some(error) = err {
                    E::entry(
                        &mut out,
                        CursorEntry::StepError(StepErrorEntry { step, error }),
                    );
                }
            }
        }
        Err(error) => E::entry(&mut out, CursorEntry::Error { error }),
    }
    answer::<E>(out)
}
