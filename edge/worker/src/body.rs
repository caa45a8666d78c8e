//! Request bodies that are read to their end even when the product answers early (a 401 or
//! a 413 before the upload is read): workerd fails the exchange with a 503 when a request
//! body is dropped unread, so the host drains what the router left.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

/// Most bytes drained after an early answer; past it the client is cut off instead.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// A request body the router reads while the host keeps a handle to drain the rest.
pub struct Shared(Arc<Mutex<Option<worker::Body>>>);

impl Shared {
    /// Wraps `body`; the second value drains whatever the router did not read.
    pub fn new(body: worker::Body) -> (Self, Leftover) {
        let inner = Arc::new(Mutex::new(Some(body)));
        (Shared(inner.clone()), Leftover(inner))
    }
}

impl Body for Shared {
    type Data = Bytes;
    type Error = worker::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }
}

/// What the router left of a request body.
pub struct Leftover(Arc<Mutex<Option<worker::Body>>>);

impl Leftover {
    /// Reads and discards the rest of the body, up to [`DRAIN_LIMIT`] bytes.
    pub async fn drain(self) {
        let body = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut body) = body else { return };
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > DRAIN_LIMIT {
                break;
            }
        }
    }
}
