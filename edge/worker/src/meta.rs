//! The metadata port over libSQL's Hrana protocol, carried by the Workers `fetch` API
//! (Turso in production, `cloudos db serve` under `wrangler dev`).

use std::sync::Arc;

use async_trait::async_trait;
use cloudos_core::ports::{DbError, MetaStore, Row, Stmt, Value};
use libsql_hrana::proto::{
    Batch, BatchCond, BatchStep, CloseStreamReq, ExecuteStreamReq, PipelineReqBody,
    PipelineRespBody, SequenceStreamReq, StmtResult, StreamRequest, StreamResponse, StreamResult,
};
use worker::send::SendFuture;
use worker::{Fetch, Headers, Method, Request, RequestInit};

/// A libSQL database reached over HTTP.
pub struct HranaMeta {
    pipeline_url: String,
    token: Option<String>,
}

impl HranaMeta {
    /// The database at `url` (`http(s)://…`; a `libsql://` URL is read as https).
    pub fn new(url: &str, token: Option<String>) -> Self {
        let base = url
            .strip_prefix("libsql://")
            .map_or_else(|| url.to_owned(), |rest| format!("https://{rest}"));
        HranaMeta {
            pipeline_url: format!("{}/v3/pipeline", base.trim_end_matches('/')),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// Sends `requests` on a fresh stream, closed at the end, and returns their results.
    async fn pipeline(&self, requests: Vec<StreamRequest>) -> Result<Vec<StreamResult>, DbError> {
        let mut stream = OpenStream::default();
        self.send(&mut stream, requests, true).await
    }

    /// Sends `requests` on `stream` (a fresh one the first time), closing it when `close`;
    /// keeps the baton and the URL the server names for the stream's next request.
    async fn send(
        &self,
        stream: &mut OpenStream,
        mut requests: Vec<StreamRequest>,
        close: bool,
    ) -> Result<Vec<StreamResult>, DbError> {
        if close {
            requests.push(StreamRequest::Close(CloseStreamReq {}));
        }
        let body = serde_json::to_string(&PipelineReqBody {
            baton: stream.baton.take(),
            requests,
        })
        .map_err(|e| DbError::Other(e.to_string()))?;
        let url = stream.base_url.as_deref().map_or_else(
            || self.pipeline_url.clone(),
            |base| format!("{}/v3/pipeline", base.trim_end_matches('/')),
        );
        let token = self.token.clone();
        let parsed = SendFuture::new(async move {
            let headers = Headers::new();
            let _ = headers.set("content-type", "application/json");
            if let Some(t) = token {
                let _ = headers.set("authorization", &format!("Bearer {t}"));
            }
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_headers(headers)
                .with_body(Some(body.into()));
            let req = Request::new_with_init(&url, &init).map_err(other)?;
            let mut res = Fetch::Request(req).send().await.map_err(other)?;
            let text = res.text().await.map_err(other)?;
            if res.status_code() != 200 {
                return Err(DbError::Other(format!(
                    "libSQL answered {}: {text}",
                    res.status_code()
                )));
            }
            serde_json::from_str::<PipelineRespBody>(&text)
                .map_err(|e| DbError::Other(e.to_string()))
        })
        .await?;
        stream.baton = parsed.baton;
        if parsed.base_url.is_some() {
            stream.base_url = parsed.base_url;
        }
        Ok(parsed.results)
    }

    /// Runs one statement on an open stream; a failure is the statement's error.
    async fn step(&self, stream: &mut OpenStream, request: StreamRequest) -> Result<(), DbError> {
        match self
            .send(stream, vec![request], false)
            .await?
            .into_iter()
            .next()
        {
            Some(StreamResult::Ok { .. }) => Ok(()),
            other => Err(failure(other)),
        }
    }

    async fn one(&self, stmt: Stmt, want_rows: bool) -> Result<StmtResult, DbError> {
        let req = StreamRequest::Execute(ExecuteStreamReq {
            stmt: to_hrana(stmt, want_rows),
        });
        match self.pipeline(vec![req]).await?.into_iter().next() {
            Some(StreamResult::Ok {
                response: StreamResponse::Execute(r),
            }) => Ok(r.result),
            other => Err(failure(other)),
        }
    }
}

/// A stream kept open between requests: its baton and the URL to send them to.
#[derive(Default)]
struct OpenStream {
    baton: Option<String>,
    base_url: Option<String>,
}

fn execute(sql: &str) -> StreamRequest {
    StreamRequest::Execute(ExecuteStreamReq {
        stmt: libsql_hrana::proto::Stmt::new(sql, false),
    })
}

fn other(e: worker::Error) -> DbError {
    DbError::Other(e.to_string())
}

/// What a result that is not the expected answer means for the caller.
fn failure(result: Option<StreamResult>) -> DbError {
    match result {
        Some(StreamResult::Error { error }) => classify(error),
        other => DbError::Other(format!("unexpected libSQL answer: {other:?}")),
    }
}

fn classify(e: libsql_hrana::proto::Error) -> DbError {
    if e.code.starts_with("SQLITE_CONSTRAINT") {
        DbError::Constraint(e.message)
    } else {
        DbError::Other(format!("{}: {}", e.code, e.message))
    }
}

fn to_hrana(stmt: Stmt, want_rows: bool) -> libsql_hrana::proto::Stmt {
    use libsql_hrana::proto::Value as H;
    let mut s = libsql_hrana::proto::Stmt::new(stmt.sql, want_rows);
    for p in stmt.params {
        s.bind(match p {
            Value::Null => H::Null,
            Value::Integer(value) => H::Integer { value },
            Value::Real(value) => H::Float { value },
            Value::Text(t) => H::Text {
                value: Arc::from(t),
            },
            Value::Blob(b) => H::Blob { value: b.into() },
        });
    }
    s
}

fn from_hrana(v: libsql_hrana::proto::Value) -> Value {
    use libsql_hrana::proto::Value as H;
    match v {
        H::Integer { value } => Value::Integer(value),
        H::Float { value } => Value::Real(value),
        H::Text { value } => Value::Text(value.to_string()),
        H::Blob { value } => Value::Blob(value.to_vec()),
        H::Null | H::None => Value::Null,
    }
}

fn step(condition: Option<BatchCond>, stmt: libsql_hrana::proto::Stmt) -> BatchStep {
    BatchStep { condition, stmt }
}

#[async_trait]
impl MetaStore for HranaMeta {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        let r = self.one(stmt, true).await?;
        Ok(r.rows
            .into_iter()
            .map(|row| Row(row.values.into_iter().map(from_hrana).collect()))
            .collect())
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, DbError> {
        Ok(self.one(stmt, false).await?.affected_row_count)
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
        // BEGIN IMMEDIATE, each statement only if the one before succeeded, COMMIT if the
        // last did, ROLLBACK otherwise: one round trip, all or nothing.
        let n = stmts.len() as u32;
        let ok = |i: u32| Some(BatchCond::Ok { step: i });
        let mut steps = vec![step(
            None,
            libsql_hrana::proto::Stmt::new("BEGIN IMMEDIATE", false),
        )];
        for (i, s) in (0u32..).zip(stmts) {
            steps.push(step(ok(i), to_hrana(s, false)));
        }
        steps.push(step(ok(n), libsql_hrana::proto::Stmt::new("COMMIT", false)));
        let committed = BatchCond::Ok { step: n + 1 };
        steps.push(step(
            Some(BatchCond::Not {
                cond: Box::new(committed),
            }),
            libsql_hrana::proto::Stmt::new("ROLLBACK", false),
        ));
        let req = StreamRequest::Batch(libsql_hrana::proto::BatchStreamReq {
            batch: Batch {
                steps,
                replication_index: None,
            },
        });
        let result = match self.pipeline(vec![req]).await?.into_iter().next() {
            Some(StreamResult::Ok {
                response: StreamResponse::Batch(b),
            }) => b.result,
            other => return Err(failure(other)),
        };
        if let Some(e) = result.step_errors.into_iter().flatten().next() {
            return Err(classify(e));
        }
        let changed = result.step_results[1..=n as usize]
            .iter()
            .map(|r| r.as_ref().map_or(0, |r| r.affected_row_count))
            .collect();
        Ok(changed)
    }

    async fn run_script(&self, sql: &str) -> Result<(), DbError> {
        // A pipeline goes on after a failed request, so each step is its own round trip on
        // one stream: the script runs only inside the transaction BEGIN opened, and COMMIT
        // is sent only after the script succeeded.
        let mut stream = OpenStream::default();
        let begin = execute("BEGIN IMMEDIATE");
        let script = StreamRequest::Sequence(SequenceStreamReq {
            sql: Some(sql.to_owned()),
            sql_id: None,
            replication_index: None,
        });
        let mut outcome = self.step(&mut stream, begin).await;
        if outcome.is_ok() {
            outcome = self.step(&mut stream, script).await;
        }
        if outcome.is_ok() {
            return self
                .send(&mut stream, vec![execute("COMMIT")], true)
                .await
                .and_then(|r| match r.into_iter().next() {
                    Some(StreamResult::Ok { .. }) => Ok(()),
                    other => Err(failure(other)),
                });
        }
        // Closing the stream rolls back whatever it opened; if that fails too, the server
        // drops the idle stream (and its transaction) on its own.
        if stream.baton.is_some() {
            let _ = self
                .send(&mut stream, vec![execute("ROLLBACK")], true)
                .await;
        }
        outcome
    }
}
