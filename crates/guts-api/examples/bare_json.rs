//! The reference the REST read benchmark compares against: a bare axum handler that
//! answers every GET with fixed JSON bytes (a response the node served, saved to a
//! file), on the same runtime and loopback, so the ratio shows what the node's own
//! work (authentication, limits, metrics, lookups, rendering) costs per request.
//!
//! usage: cargo run --release -p guts-api --example bare_json -- BODY.json 127.0.0.1:PORT

use std::error::Error;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::header::CONTENT_TYPE;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(addr)) = (args.next(), args.next()) else {
        return Err("usage: bare_json BODY.json ADDR".into());
    };
    let body = Bytes::from(std::fs::read(path)?);
    let app = Router::new().fallback(get(move || {
        let body = body.clone();
        async move { ([(CONTENT_TYPE, "application/json; charset=utf-8")], body) }
    }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
