//! Running Hrana statements, batches and descriptions on one embedded libSQL connection.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use libsql::Connection;
use libsql_hrana::proto::{
    Batch, BatchCond, BatchResult, Col, DescribeCol, DescribeParam, DescribeResult, Error, Row,
    Stmt, StmtResult, Value,
};

/// A Hrana error: what the client shows (`message`) and a stable `code`.
pub fn error(code: &str, message: impl Into<String>) -> Error {
    Error {
        message: message.into(),
        code: code.to_owned(),
    }
}

/// SQLite's result code name for a libSQL error, as sqld reports it (`SQLITE_CONSTRAINT`, …).
pub fn sql_error(e: libsql::Error) -> Error {
    let code = match &e {
        libsql::Error::SqliteFailure(code, _) => match code & 0xff {
            5 => "SQLITE_BUSY",
            6 => "SQLITE_LOCKED",
            8 => "SQLITE_READONLY",
            11 => "SQLITE_CORRUPT",
            13 => "SQLITE_FULL",
            18 => "SQLITE_TOOBIG",
            19 => "SQLITE_CONSTRAINT",
            20 => "SQLITE_MISMATCH",
            25 => "SQLITE_RANGE",
            _ => "SQLITE_ERROR",
        },
        _ => "SQLITE_ERROR",
    };
    let message = match e {
        // SQLite's own words, without libSQL's "SQLite failure:" wrapping, as sqld sends them.
        libsql::Error::SqliteFailure(_, m) => m,
        other => other.to_string(),
    };
    error(code, message)
}

/// The SQL text of a statement: inline, or stored earlier on the stream under `sql_id`.
pub fn sql_text<'a>(
    sql: Option<&'a str>,
    sql_id: Option<i32>,
    stored: &'a HashMap<i32, String>,
) -> Result<&'a str, Error> {
    match (sql, sql_id) {
        (Some(sql), None) => Ok(sql),
        (None, Some(id)) => stored
            .get(&id)
            .map(String::as_str)
            .ok_or_else(|| error("SQL_NOT_FOUND", format!("no SQL text stored under id {id}"))),
        _ => Err(error(
            "SQL_NO_STATEMENT",
            "a statement needs exactly one of `sql` and `sql_id`",
        )),
    }
}

fn to_libsql(v: &Value) -> Result<libsql::Value, Error> {
    Ok(match v {
        Value::Null => libsql::Value::Null,
        Value::Integer { value } => libsql::Value::Integer(*value),
        Value::Float { value } => libsql::Value::Real(*value),
        Value::Text { value } => libsql::Value::Text(value.to_string()),
        Value::Blob { value } => libsql::Value::Blob(value.to_vec()),
        Value::None => return Err(error("INVALID_ARGUMENT", "an argument has no value")),
    })
}

fn from_libsql(v: libsql::Value) -> Value {
    match v {
        libsql::Value::Null => Value::Null,
        libsql::Value::Integer(value) => Value::Integer { value },
        libsql::Value::Real(value) => Value::Float { value },
        libsql::Value::Text(t) => Value::Text {
            value: Arc::from(t),
        },
        libsql::Value::Blob(b) => Value::Blob {
            value: Bytes::from(b),
        },
    }
}

/// Binds by position and by name, as sqld does: `?`/`?NNN` take `args`, `:x`/`@x`/`$x` take
/// the named argument (given with or without its prefix), else the argument at that position.
fn bind(stmt: &libsql::Statement, s: &Stmt) -> Result<libsql::params::Params, Error> {
    let mut values = Vec::with_capacity(stmt.parameter_count());
    for i in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(i as i32);
        let named = name.filter(|n| !n.starts_with('?')).and_then(|n| {
            s.named_args
                .iter()
                .find(|a| a.name == n || a.name == n[1..])
                .map(|a| &a.value)
        });
        let value = named.or_else(|| s.args.get(i - 1)).ok_or_else(|| {
            let which = name.map_or_else(|| format!("#{i}"), str::to_owned);
            error("ARGS_INVALID", format!("no value for parameter {which}"))
        })?;
        values.push(to_libsql(value)?);
    }
    Ok(libsql::params::Params::Positional(values))
}

/// Runs one statement and collects its columns, rows and changes.
pub async fn execute(
    conn: &Connection,
    s: &Stmt,
    stored: &HashMap<i32, String>,
) -> Result<StmtResult, Error> {
    let sql = sql_text(s.sql.as_deref(), s.sql_id, stored)?;
    let stmt = conn.prepare(sql).await.map_err(sql_error)?;
    let params = bind(&stmt, s)?;
    let cols: Vec<Col> = stmt
        .columns()
        .iter()
        .map(|c| Col {
            name: Some(c.name().to_owned()),
            decltype: c.decl_type().map(str::to_owned),
        })
        .collect();
    let before = conn.total_changes();
    let mut rows = stmt.query(params).await.map_err(sql_error)?;
    let mut out = Vec::new();
    let want_rows = s.want_rows.unwrap_or(true);
    while let Some(row) = rows.next().await.map_err(sql_error)? {
        if want_rows {
            let values = (0..cols.len() as i32)
                .map(|i| row.get_value(i).map(from_libsql).map_err(sql_error))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Row { values });
        }
    }
    // `changes()` keeps the count of the last writing statement; only report it if this one wrote.
    let wrote = conn.total_changes() != before;
    Ok(StmtResult {
        cols,
        rows: out,
        affected_row_count: if wrote { conn.changes() } else { 0 },
        last_insert_rowid: Some(conn.last_insert_rowid()),
        replication_index: None,
        rows_read: 0,
        rows_written: 0,
        query_duration_ms: 0.0,
    })
}

/// Whether step `i` left something in `list` (a result, or an error).
fn step<T>(i: u32, list: &[Option<T>]) -> Result<bool, Error> {
    list.get(i as usize)
        .map(Option::is_some)
        .ok_or_else(|| error("BATCH_COND_INVALID", format!("step {i} has not run yet")))
}

fn holds(cond: &BatchCond, result: &BatchResult, conn: &Connection) -> Result<bool, Error> {
    Ok(match cond {
        BatchCond::Ok { step: i } => step(*i, &result.step_results)?,
        BatchCond::Error { step: i } => step(*i, &result.step_errors)?,
        BatchCond::Not { cond } => !holds(cond, result, conn)?,
        BatchCond::And(list) => {
            for c in &list.conds {
                if !holds(c, result, conn)? {
                    return Ok(false);
                }
            }
            true
        }
        BatchCond::Or(list) => {
            for c in &list.conds {
                if holds(c, result, conn)? {
                    return Ok(true);
                }
            }
            false
        }
        BatchCond::IsAutocommit {} => conn.is_autocommit(),
        BatchCond::None => return Err(error("BATCH_COND_INVALID", "empty condition")),
    })
}

/// Runs a batch: each step whose condition holds, recording a result or an error per step.
pub async fn batch(
    conn: &Connection,
    b: &Batch,
    stored: &HashMap<i32, String>,
) -> Result<BatchResult, Error> {
    let mut result = BatchResult::default();
    for step in &b.steps {
        let run = match &step.condition {
            None => true,
            Some(c) => holds(c, &result, conn)?,
        };
        let (ok, err) = if run {
            match execute(conn, &step.stmt, stored).await {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        result.step_results.push(ok);
        result.step_errors.push(err);
    }
    Ok(result)
}

/// Parameters and result columns of a statement, without running it.
pub async fn describe(conn: &Connection, sql: &str) -> Result<DescribeResult, Error> {
    let stmt = conn.prepare(sql).await.map_err(sql_error)?;
    let params = (1..=stmt.parameter_count())
        .map(|i| DescribeParam {
            name: stmt.parameter_name(i as i32).map(str::to_owned),
        })
        .collect();
    let cols = stmt
        .columns()
        .iter()
        .map(|c| DescribeCol {
            name: c.name().to_owned(),
            decltype: c.decl_type().map(str::to_owned),
        })
        .collect();
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    Ok(DescribeResult {
        params,
        cols,
        is_explain: first == "EXPLAIN",
        // libSQL does not expose sqlite3_stmt_readonly: judge by the leading keyword.
        is_readonly: matches!(first.as_str(), "SELECT" | "EXPLAIN" | "VALUES"),
    })
}
