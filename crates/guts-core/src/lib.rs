//! Pure domain of Guts: identities today; signed operations, the per-repository
//! operation DAG and its deterministic fold as they land.
//!
//! Architecture invariant: no I/O, no async, no clocks read implicitly. Everything here
//! is a function of its arguments, so it can be tested exhaustively and fuzzed.

pub mod identity;

pub use identity::{KeyParseError, Keypair, PublicKey};
