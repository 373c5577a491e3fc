//! Which issues and pull requests a list shows: GitHub's `state`, `labels`, `assignee`,
//! `creator` and `since` filters, read once here for every front end that lists threads.

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
    /// Only threads updated at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
}

impl ThreadFilter {
    pub fn matches(&self, thread: &Thread) -> bool {
        self.open.is_none_or(|open| thread.open == open)
            && self.labels.iter().all(|l| thread.labels.contains(l))
            && self.creator.is_none_or(|c| thread.author == c)
            && self
                .since_ms
                .is_none_or(|s| at_or_after(thread.updated_at.wall_ms, s))
            && match self.assignee {
                AssigneeFilter::Ignored => true,
                AssigneeFilter::Nobody => thread.assignees.is_empty(),
                AssigneeFilter::Anybody => !thread.assignees.is_empty(),
                AssigneeFilter::User(key) => thread.assignees.contains(&key),
            }
    }
}

/// Whether wall-clock milliseconds `ms` are at or after `since_ms`.
pub fn at_or_after(ms: u64, since_ms: i64) -> bool {
    i64::try_from(ms).unwrap_or(i64::MAX) >= since_ms
}

/// A list's `since` (ISO 8601, as GitHub takes it: `YYYY-MM-DDTHH:MM:SSZ`, or with an
/// offset, or a date alone) as Unix milliseconds; absent or blank is no bound. Anything
/// else is invalid, named as `resource`'s `since`.
pub fn since_ms(resource: &'static str, since: Option<&str>) -> Result<Option<i64>, ServiceError> {
    since
        .filter(|s| !s.trim().is_empty())
        .map(|text| {
            guts_ops::time::parse_iso8601(text.trim())
                .map(|secs| secs.saturating_mul(1000))
                .ok_or_else(|| {
                    ServiceError::invalid(
                        resource,
                        "since",
                        FieldCode::Invalid,
                        Some(format!("since must be an ISO 8601 timestamp: {text}")),
                    )
                })
        })
        .transpose()
}

/// A list's comma-separated `labels` as label keys (lowercase, blanks dropped).
pub fn list_labels(labels: Option<&str>) -> Vec<String> {
    labels
        .iter()
        .flat_map(|l| l.split(','))
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect()
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
    /// comma-separated `labels`, `assignee` (a login, `none` or `*`), `creator` (a
    /// login) and `since` (see [`since_ms`]). An unknown login is
    /// [`ServiceError::NotFound`], as on GitHub.
    pub fn thread_filter(
        &self,
        state: Option<&str>,
        labels: Option<&str>,
        assignee: Option<&str>,
        creator: Option<&str>,
        since: Option<&str>,
    ) -> Result<ThreadFilter, ServiceError> {
        let open = state_filter(state)?;
        let since_ms = since_ms("Issue", since)?;
        let labels = list_labels(labels);
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
            since_ms,
        })
    }
}
