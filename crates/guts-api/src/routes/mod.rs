//! One module per resource; [`crate::router`] merges them.

pub(crate) mod admin;
pub(crate) mod branches;
pub(crate) mod collaborators;
pub(crate) mod git;
pub(crate) mod health;
pub(crate) mod repos;
pub(crate) mod users;
