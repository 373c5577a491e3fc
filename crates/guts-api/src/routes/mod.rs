//! One module per resource; [`crate::router`] merges them.

pub(crate) mod admin;
pub(crate) mod archives;
pub(crate) mod avatars;
pub(crate) mod backup;
pub(crate) mod branches;
pub(crate) mod collaborators;
pub(crate) mod comments;
pub(crate) mod commits;
pub(crate) mod contents;
pub(crate) mod contents_write;
pub(crate) mod downloads;
pub(crate) mod git;
pub(crate) mod git_data;
pub(crate) mod git_writes;
pub(crate) mod health;
pub(crate) mod issues;
pub(crate) mod labels;
pub(crate) mod meta;
pub(crate) mod orgs;
pub(crate) mod pulls;
pub(crate) mod rate_limit;
pub(crate) mod replication;
pub(crate) mod repo_stats;
pub(crate) mod repos;
pub(crate) mod reviews;
pub(crate) mod users;
