//! The web interface of Guts: server-rendered HTML on the API listener, at GitHub's
//! URL scheme (`/{owner}/{repo}/tree/{ref}/{path}`, `/{owner}/{repo}/pull/{n}`, …).
//!
//! A thin front end like the REST API: each handler extracts the caller (from a sealed
//! session cookie) and its arguments, calls one use case of guts-service, and renders
//! the answer with maud. This crate is the only one that knows HTML; it never signs an
//! operation itself and never decides visibility (guts-service does both).

pub mod markup;
