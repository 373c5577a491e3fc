//! The guts-node daemon as a library: configuration, composition and lifecycle, so that
//! tests can build a node in-process and the binary stays a thin `main`.

pub mod cli;
pub mod config;
pub mod keyfile;
pub mod node;
pub mod replica;
pub mod signals;

pub use config::Config;
pub use node::{Identity, Node, NodeError};
