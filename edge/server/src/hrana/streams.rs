//! Hrana streams over HTTP: a connection kept between requests, found again by its baton.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libsql::{Connection, Database};
use libsql_hrana::proto::Error;

use super::exec::{error, sql_error};

/// A stream streams hold between requests: its connection (and so its open transaction)
/// and the SQL texts stored on it.
pub struct Stream {
    pub conn: Connection,
    pub sqls: HashMap<i32, String>,
}

/// Open streams by their current baton. A baton is good for one request: each answer names
/// the next one, so a replayed or concurrent request cannot reach the stream.
pub struct Streams {
    db: Database,
    idle: Duration,
    max_open: usize,
    open: Mutex<HashMap<String, (Stream, Instant)>>,
}

impl Streams {
    /// Streams over `db`; one idle longer than `idle` is closed (rolling back what it had open).
    pub fn new(db: Database, idle: Duration, max_open: usize) -> Self {
        Streams {
            db,
            idle,
            max_open,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The stream a baton names, or a new one when there is no baton.
    pub async fn take(&self, baton: Option<&str>) -> Result<Stream, Error> {
        if let Some(stream) = self.resume(baton)? {
            return Ok(stream);
        }
        let conn = self.db.connect().map_err(sql_error)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql_error)?;
        // As Turso does: rows that point at nothing are refused.
        conn.execute("PRAGMA foreign_keys = ON", ())
            .await
            .map_err(sql_error)?;
        // A client may use this database, and no other file the server's user can reach.
        conn.authorizer(Some(std::sync::Arc::new(
            |ctx: &libsql::AuthContext| match ctx.action {
                libsql::AuthAction::Attach { .. } | libsql::AuthAction::Detach { .. } => {
                    libsql::Authorization::Deny
                }
                _ => libsql::Authorization::Allow,
            },
        )))
        .map_err(sql_error)?;
        Ok(Stream {
            conn,
            sqls: HashMap::new(),
        })
    }

    /// Drops idle streams, then takes the one `baton` names (`None` without a baton).
    fn resume(&self, baton: Option<&str>) -> Result<Option<Stream>, Error> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let idle = self.idle;
        open.retain(|_, (_, used)| used.elapsed() < idle);
        let Some(b) = baton else {
            return Ok(None);
        };
        open.remove(b).map(|(s, _)| Some(s)).ok_or_else(|| {
            error(
                "STREAM_EXPIRED",
                "the stream's baton is unknown: it expired, was closed or was already used",
            )
        })
    }

    /// Keeps a stream for its next request and returns the baton that finds it.
    pub fn put(&self, stream: Stream) -> Result<String, Error> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.max_open {
            return Err(error(
                "STREAMS_EXHAUSTED",
                format!("more than {} streams are open", self.max_open),
            ));
        }
        let baton = format!("{:032x}", rand::random::<u128>());
        open.insert(baton.clone(), (stream, Instant::now()));
        Ok(baton)
    }
}
