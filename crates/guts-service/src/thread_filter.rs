//! Which issues and pull requests a list shows: GitHub's `state`, `labels`, `assignee`
//! and `creator` filters, read once here for every front end that lists threads.

use guts_core::{PublicKey, Thread};

use crate::Service;
use crate::error::{FieldCode, ServiceError};

/// The `assignee` filter of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssigneeFilter {
    #[default]
    Ignored,
    /// `none`: no assignee.
    Nobody,
    /// `*`: any assignee.
    Anybody,
    User(PublicKey),
}

/// A list's filters, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFilter {
    /// `None` keeps open and closed threads (`all`).
    pub open: Option<bool>,
    /// Lowercase label names, all of which a thread must carry.
    pub labels: Vec<String>,
    pub assignee: AssigneeFilter,
    pub creator: Option<PublicKey>,
}

impl ThreadFilter {
    pub fn matches(&self, thread: &Thread) -> bool {
        self.open.is_none_or(|open| thread.open == open)
            && self.labels.iter().all(|l| thread.labels.contains(l))
            && self.creator.is_none_or(|c| thread.author == c)
            && match self.assignee {
                AssigneeFilter::Ignored => true,
                AssigneeFilter::Nobody => thread.assignees.is_empty(),
                AssigneeFilter::Anybody => !thread.assignees.is_empty(),
                AssigneeFilter::User(key) => thread.assignees.contains(&key),
            }
    }
}

/// `open` (the default), `closed` or `all` as a thread's wanted openness.
pub fn state_filter(state: Option<&str>) -> Result<Option<bool>, ServiceError> {
    match state.unwrap_or("open") {
        "open" => Ok(Some(true)),
        "closed" => Ok(Some(false)),
        "all" => Ok(None),
        _ => Err(ServiceError::invalid(
            "Issue",
            "state",
            FieldCode::Invalid,
            Some("must be open, closed or all".into()),
        )),
    }
}

impl Service {
    /// The key of user `login`, or [`ServiceError::NotFound`].
    pub fn user_key(&self, login: &str) -> Result<PublicKey, ServiceError> {
        self.user(login)?.public_key().map_err(|e| {
            tracing::error!(error = %e, "stored user key unreadable");
            ServiceError::Internal
        })
    }

    /// A list's filters as a request spells them: `state` (`open` by default),
    /// comma-separated `labels`, `assignee` (a login, `none` or `*`) and `creator` (a
    /// login). An unknown login is [`ServiceError::NotFound`], as on GitHub.
    pub fn thread_filter(
        &self,
        state: Option<&str>,
        labels: Option<&str>,
        assignee: Option<&str>,
        creator: Option<&str>,
    ) -> Result<ThreadFilter, ServiceError> {
        let open = state_filter(state)?;
        let labels = labels
            .iter()
            .flat_map(|l| l.split(','))
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty())
            .collect();
        let creator = creator.map(|login| self.user_key(login)).transpose()?;
        let assignee = match assignee {
            None => AssigneeFilter::Ignored,
            Some("none") => AssigneeFilter::Nobody,
            Some("*") => AssigneeFilter::Anybody,
            Some(login) => AssigneeFilter::User(self.user_key(login)?),
        };
        Ok(ThreadFilter {
            open,
            labels,
            assignee,
            creator,
        })
    }
}
