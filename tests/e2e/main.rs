//! Workspace-level end-to-end tests: the real `guts-node` binary in temp dirs on free
//! loopback ports. Compiled as one integration-test binary of the guts-node package
//! (each test binary links everything, so there is one), which is also how cargo knows
//! to build the binary first and tells us where it is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod api;
mod archives;
mod backup;
mod browse;
mod check_runs;
mod clients;
mod conformance;
mod git;
mod git_writes;
mod gitutil;
mod harness;
mod issues;
mod k8s;
mod keys;
mod node;
mod reads;
mod replication;
mod repo_settings;
mod rolling;
mod scale;
mod schemathesis;
mod ssh;
mod statuses;
mod trust_limits;
mod trust_memory;
mod trust_orgs;
mod trust_reviews;
mod trust_slow;
mod web;
mod webhooks;
