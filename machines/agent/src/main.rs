//! The sandbox agent. The sandboxes issue makes this an axum server with `WS /attach` and
//! `POST /exec`; for now it only reports that it is not built yet.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("cloudos-agent: the terminal sandbox agent is not implemented yet (see the sandboxes issue)");
    std::process::exit(2);
}
