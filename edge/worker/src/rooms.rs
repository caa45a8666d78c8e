//! The Durable Object class reserved for live rooms (collaboration fills it). It exists now so
//! `wrangler.toml` can bind and migrate it; until then it answers 501.

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// A live room (reserved).
#[durable_object]
pub struct Room {
    _state: State,
}

impl DurableObject for Room {
    fn new(state: State, _env: Env) -> Self {
        Room { _state: state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        Response::error("rooms are not implemented yet", 501)
    }
}
