//! Branches (`/branches`, `/branches/{branch}`) and their protection
//! (`/branches/{branch}/protection`) as GitHub shows them.

use serde::Serialize;

use super::Commit;
use crate::browse::Repo;
use crate::links::Links;

/// The fields a branch has both in the list and alone.
#[derive(Debug, Serialize)]
pub(crate) struct BranchFields {
    name: String,
    protected: bool,
    protection: ProtectionSummary,
    protection_url: String,
}

impl BranchFields {
    /// Branch `name` (short, `main`), `protected` or not.
    fn new(repo: &Repo, name: String, protected: bool) -> BranchFields {
        BranchFields {
            protection_url: repo.api(&format!("/branches/{name}/protection")),
            name,
            protected,
            protection: ProtectionSummary {
                enabled: protected,
                required_status_checks: StatusChecks::NONE,
            },
        }
    }
}

/// A branch's `protection` as its listing summarises it.
#[derive(Debug, Serialize)]
pub(crate) struct ProtectionSummary {
    enabled: bool,
    required_status_checks: StatusChecks,
}

/// Required status checks: Guts has none, so they are off and empty.
#[derive(Debug, Serialize)]
pub(crate) struct StatusChecks {
    enforcement_level: &'static str,
    contexts: &'static [&'static str],
    checks: &'static [&'static str],
}

impl StatusChecks {
    const NONE: StatusChecks = StatusChecks {
        enforcement_level: "off",
        contexts: &[],
        checks: &[],
    };
}

/// One branch of `GET /branches`: its head commit by sha and URL only.
#[derive(Debug, Serialize)]
pub(crate) struct ShortBranch {
    #[serde(flatten)]
    fields: BranchFields,
    commit: CommitLink,
}

/// `{sha, url}` of a commit (the REST commit's URL).
#[derive(Debug, Serialize)]
pub(crate) struct CommitLink {
    sha: String,
    url: String,
}

impl ShortBranch {
    /// Branch `name` at commit `sha` (hex).
    pub(crate) fn new(repo: &Repo, name: String, protected: bool, sha: String) -> ShortBranch {
        ShortBranch {
            fields: BranchFields::new(repo, name, protected),
            commit: CommitLink {
                url: repo.api(&format!("/commits/{sha}")),
                sha,
            },
        }
    }
}

/// `GET /branches/{branch}`: the branch with its head commit in full.
#[derive(Debug, Serialize)]
pub(crate) struct Branch {
    #[serde(flatten)]
    fields: BranchFields,
    commit: Commit,
    #[serde(rename = "_links")]
    links: BranchLinks,
}

/// `_links` of a branch: its API and web URLs.
#[derive(Debug, Serialize)]
pub(crate) struct BranchLinks {
    #[serde(rename = "self")]
    this: String,
    html: String,
}

impl Branch {
    pub(crate) fn new(repo: &Repo, name: String, protected: bool, commit: Commit) -> Branch {
        Branch {
            links: BranchLinks {
                this: repo.api(&format!("/branches/{name}")),
                html: repo.web(&format!("/tree/{name}")),
            },
            fields: BranchFields::new(repo, name, protected),
            commit,
        }
    }
}

/// A branch's protection (GitHub's `branch-protection`), in the parts Guts enforces.
/// GitHub leaves out the sections a protection does not have (clients index into the
/// ones present) rather than sending them as null.
#[derive(Debug, Serialize)]
pub(crate) struct Protection {
    url: String,
    enforce_admins: EnforceAdmins,
    allow_force_pushes: Enabled,
    allow_deletions: Enabled,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_pull_request_reviews: Option<RequiredReviews>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_status_checks: Option<RequiredStatusChecks>,
}

/// GitHub's `protected-branch-required-status-check`: the contexts whose latest status
/// must be `success`, or whose latest check run of that name must be completed with
/// success, neutral or skipped (each also in `checks`, from any app).
#[derive(Debug, Serialize)]
pub(crate) struct RequiredStatusChecks {
    url: String,
    strict: bool,
    contexts: Vec<String>,
    checks: Vec<RequiredCheck>,
    contexts_url: String,
}

/// One required check: a context, from any app.
#[derive(Debug, Serialize)]
pub(crate) struct RequiredCheck {
    context: String,
    app_id: Option<u64>,
}

/// Admins are held to the rules too: the fold enforces them on every push and merge.
#[derive(Debug, Serialize)]
pub(crate) struct EnforceAdmins {
    url: String,
    enabled: bool,
}

/// `{enabled}`, GitHub's shape for an on/off rule.
#[derive(Debug, Serialize)]
pub(crate) struct Enabled {
    enabled: bool,
}

/// The review rule of a protection, present when it requires approvals or dismisses
/// stale ones.
#[derive(Debug, Serialize)]
pub(crate) struct RequiredReviews {
    url: String,
    required_approving_review_count: u8,
    dismiss_stale_reviews: bool,
    /// Guts has no code owners.
    require_code_owner_reviews: bool,
}

impl Protection {
    /// The protection `p` of `owner/repo`'s branch `branch`, named in its URLs as the
    /// caller spelled them.
    pub(crate) fn new(
        links: &Links,
        owner: &str,
        repo: &str,
        branch: &str,
        p: &guts_core::BranchProtection,
    ) -> Protection {
        let url = links.api(&format!(
            "/repos/{owner}/{repo}/branches/{branch}/protection"
        ));
        Protection {
            enforce_admins: EnforceAdmins {
                url: format!("{url}/enforce_admins"),
                enabled: true,
            },
            allow_force_pushes: Enabled {
                enabled: !p.no_force_push,
            },
            allow_deletions: Enabled {
                enabled: !p.no_deletion,
            },
            required_pull_request_reviews: (p.required_approvals > 0 || p.dismiss_stale_reviews)
                .then(|| RequiredReviews {
                    url: format!("{url}/required_pull_request_reviews"),
                    required_approving_review_count: p.required_approvals,
                    dismiss_stale_reviews: p.dismiss_stale_reviews,
                    require_code_owner_reviews: false,
                }),
            required_status_checks: p.required_checks.as_ref().map(|c| RequiredStatusChecks {
                url: format!("{url}/required_status_checks"),
                strict: c.strict,
                contexts: c.contexts.clone(),
                checks: c
                    .contexts
                    .iter()
                    .map(|context| RequiredCheck {
                        context: context.clone(),
                        app_id: None,
                    })
                    .collect(),
                contexts_url: format!("{url}/required_status_checks/contexts"),
            }),
            url,
        }
    }

    /// Its admin rule (`GET …/protection/enforce_admins`).
    pub(crate) fn enforce_admins(self) -> EnforceAdmins {
        self.enforce_admins
    }

    /// Its review rule (`GET …/protection/required_pull_request_reviews`), if any.
    pub(crate) fn required_reviews(self) -> Option<RequiredReviews> {
        self.required_pull_request_reviews
    }
}
