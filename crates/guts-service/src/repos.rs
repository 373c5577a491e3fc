//! Repositories: finding one as the caller may see it, creating one, and signing and
//! appending operations to one for the caller.

use std::sync::Arc;

use guts_core::{Keypair, OpId, Payload, RepoHeader, RepoState, Role};
use guts_storage::{Listing, OrgRole, RepoError, RepoView, Scope, ServedName};

use crate::Service;
use crate::caller::{Authed, Caller};
use crate::error::{FieldCode, ServiceError};

/// Longest repository description accepted (characters, as GitHub).
pub const MAX_DESCRIPTION_CHARS: usize = 4096;

/// A repository as one caller may see it: its state, the name it is served under here,
/// and the caller's role in it.
#[derive(Debug, Clone)]
pub struct RepoAccess {
    pub view: Arc<RepoView>,
    pub served: ServedName,
    pub role: Option<Role>,
}

/// What a new repository is made of.
#[derive(Debug, Clone, Default)]
pub struct NewRepo {
    /// Required; `None` is answered as a missing field (after the caller's checks).
    pub name: Option<String>,
    pub description: String,
    pub private: bool,
    /// Short branch name; `main` when `None`.
    pub default_branch: Option<String>,
    /// An initial commit with a README on the default branch, as GitHub's
    /// `auto_init` makes.
    pub auto_init: bool,
}

/// What a repository's settings change to; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoUpdate {
    pub description: Option<String>,
    pub private: Option<bool>,
    /// Short name of an existing branch: what clones check out from then on.
    pub default_branch: Option<String>,
    /// A new name; the old one keeps answering until another repository takes it.
    pub name: Option<String>,
    pub homepage: Option<String>,
    pub has_issues: Option<bool>,
    /// Archived repositories are read-only until unarchived.
    pub archived: Option<bool>,
}

/// The name of the resource an operation is about, for the errors that name it.
pub fn resource_of(payload: &Payload) -> &'static str {
    match payload {
        Payload::SetBranchProtection { .. } => "Branch",
        Payload::UpdateRef { .. } => "Ref",
        Payload::AssignThread {
            as_: guts_core::Assignment::Reviewer,
            ..
        } => "PullRequest",
        Payload::OpenIssue { .. }
        | Payload::EditThread { .. }
        | Payload::LabelThread { .. }
        | Payload::AssignThread { .. } => "Issue",
        Payload::OpenPull { .. } | Payload::MergePull { .. } => "PullRequest",
        Payload::Comment { .. } | Payload::EditComment { .. } => "IssueComment",
        Payload::SetLabel { .. } => "Label",
        Payload::Review { .. } => "PullRequestReview",
        _ => "Repository",
    }
}

/// A description within GitHub's limit, counted in characters.
fn check_description(description: &str) -> Result<(), ServiceError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::invalid(
            "Repository",
            "description",
            FieldCode::Invalid,
            Some(format!(
                "is too long (maximum is {MAX_DESCRIPTION_CHARS} characters)"
            )),
        ));
    }
    Ok(())
}

/// Private repositories are visible only to whoever has a role in them, and to site
/// admins.
fn visible(view: &RepoView, caller: Caller<'_>) -> bool {
    let private = view.state.meta.as_ref().is_none_or(|m| m.private);
    !private || caller.role_in(view).is_some() || caller.is_site_admin()
}

/// [`visible`], from what is kept of a repository whose state may not be loaded.
fn header_visible(header: &RepoHeader, caller: Caller<'_>) -> bool {
    let private = header.meta.as_ref().is_none_or(|m| m.private);
    !private
        || caller
            .user()
            .is_some_and(|a| header.access.role(&a.key()).is_some())
        || caller.is_site_admin()
}

impl Service {
    /// Where `view` is served on this node: the owner and name its URLs spell. A
    /// deleted repository by the name it was created with.
    pub fn served(&self, view: &RepoView) -> ServedName {
        self.repos.served(view.id).unwrap_or_else(|| {
            let meta = view.state.meta.as_ref();
            ServedName {
                owner: meta.map(|m| m.owner.clone()).unwrap_or_default(),
                name: meta.map(|m| m.name.clone()).unwrap_or_default(),
            }
        })
    }

    /// Repository `owner/name` (a trailing `.git` ignored) as `caller` may see it;
    /// [`ServiceError::NotFound`] when it does not exist or is private to them.
    pub fn repo(
        &self,
        caller: Caller<'_>,
        owner: &str,
        name: &str,
    ) -> Result<RepoAccess, ServiceError> {
        let name = name.strip_suffix(".git").unwrap_or(name);
        let view = self
            .repos
            .find(owner, name)
            .filter(|v| visible(v, caller))
            .ok_or(ServiceError::NotFound)?;
        Ok(self.access(caller, view))
    }

    /// [`Service::repo`] for reading issues and pull requests as issues: when the
    /// state is not in memory the view may hold only the repository's header, labels
    /// and threads, read from the store's thread rows (see
    /// `guts_storage::Repositories::find_threads`), so it renders issues and nothing
    /// else (no comments, reviews, checks or hooks), and perhaps only the threads
    /// `select` picks.
    pub fn repo_threads(
        &self,
        caller: Caller<'_>,
        owner: &str,
        name: &str,
        select: guts_storage::RowSelect<'_>,
    ) -> Result<RepoAccess, ServiceError> {
        let name = name.strip_suffix(".git").unwrap_or(name);
        let view = self
            .repos
            .find_threads(owner, name, select)
            .filter(|v| visible(v, caller))
            .ok_or(ServiceError::NotFound)?;
        Ok(self.access(caller, view))
    }

    /// `view` as `caller` sees it (no visibility check: for repositories the caller
    /// was given, such as one they just created).
    pub fn access(&self, caller: Caller<'_>, view: Arc<RepoView>) -> RepoAccess {
        RepoAccess {
            served: self.served(&view),
            role: caller.role_in(&view),
            view,
        }
    }

    /// Every live repository `caller` may see, in the store's order.
    pub fn visible_repos(&self, caller: Caller<'_>) -> Vec<Arc<RepoView>> {
        self.visible_repos_of(caller, None)
    }

    /// [`Service::visible_repos`], only those served under `owner` (case-insensitive)
    /// if given. Visibility and owner are decided before any state is loaded, so only
    /// the repositories returned are loaded.
    pub fn visible_repos_of(&self, caller: Caller<'_>, owner: Option<&str>) -> Vec<Arc<RepoView>> {
        let listings = self.repos.listings().into_iter().filter(|l| {
            owner.is_none_or(|owner| {
                self.repos
                    .served(l.id)
                    .is_some_and(|s| s.owner.eq_ignore_ascii_case(owner))
            })
        });
        self.load_visible(caller, listings)
    }

    /// The `limit` most recently updated live repositories `caller` may see, newest
    /// first; with `member`, only those the caller holds a role in. Chosen before any
    /// state is loaded.
    pub fn recent_repos(
        &self,
        caller: Caller<'_>,
        member: bool,
        limit: usize,
    ) -> Vec<Arc<RepoView>> {
        let mut listings = self.repos.listings();
        listings.sort_by_key(|l| std::cmp::Reverse(l.updated_ms));
        let key = caller.user().map(Authed::key);
        let wanted = listings
            .into_iter()
            .filter(|l| header_visible(&l.header, caller))
            .filter(|l| !member || key.is_some_and(|k| l.header.access.role(&k).is_some()))
            .take(limit);
        self.load_visible(caller, wanted)
    }

    fn load_visible(
        &self,
        caller: Caller<'_>,
        listings: impl Iterator<Item = Listing>,
    ) -> Vec<Arc<RepoView>> {
        listings
            .filter(|l| header_visible(&l.header, caller))
            .filter_map(|l| self.repos.get(l.id))
            .filter(|v| visible(v, caller))
            .collect()
    }

    /// Signs `payload` as `who` and appends it; returns the new state and the
    /// operation's id. The token must carry the `repo` scope; the fold decides the rest.
    pub async fn append(
        &self,
        who: &Authed,
        view: &RepoView,
        payload: Payload,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        who.require(Scope::Repo)?;
        let key = self.accounts.signing_key(&who.user)?;
        self.append_signed(view, &key, payload).await
    }

    /// [`Service::append`] if `check` accepts the state the operation would follow (it
    /// runs under the repository's append lock, so nothing moves between the check and
    /// the append): how a change prepared from an earlier state (a merge commit written
    /// against a base and a head) refuses to land on a state that moved meanwhile.
    pub async fn append_checked(
        &self,
        who: &Authed,
        view: &RepoView,
        payload: Payload,
        check: impl FnOnce(&RepoState) -> Result<(), RepoError>,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        who.require(Scope::Repo)?;
        let key = self.accounts.signing_key(&who.user)?;
        self.append_signed_checked(view, &key, payload, check).await
    }

    /// [`Service::append`], but signed as the organization when `who` administers the
    /// organization that owns the repository: org admins administer every repository
    /// of their organization, as on GitHub, including what only its owner may do
    /// (delete it, change an admin's role).
    pub async fn administer(
        &self,
        who: &Authed,
        view: &RepoView,
        payload: Payload,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        who.require(Scope::Repo)?;
        match self.org_key_for_admin(who, view)? {
            Some(key) => self.append_signed(view, &key, payload).await,
            None => self.append(who, view, payload).await,
        }
    }

    /// Signs `payload` with `key` and appends it.
    pub(crate) async fn append_signed(
        &self,
        view: &RepoView,
        key: &Keypair,
        payload: Payload,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        self.append_signed_checked(view, key, payload, |_| Ok(()))
            .await
    }

    /// Signs `payload` with `key` and appends it if `check` accepts the state.
    async fn append_signed_checked(
        &self,
        view: &RepoView,
        key: &Keypair,
        payload: Payload,
        check: impl FnOnce(&RepoState) -> Result<(), RepoError>,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        let resource = resource_of(&payload);
        self.repos
            .append_checked(view.id, key, payload, check)
            .await
            .map_err(|e| match e {
                RepoError::Encode(error) => ServiceError::TooLarge { resource, error },
                other => other.into(),
            })
    }

    /// The organization's key if the repository is an organization's (its key is the
    /// Owner) and `who` administers that organization.
    fn org_key_for_admin(
        &self,
        who: &Authed,
        view: &RepoView,
    ) -> Result<Option<Keypair>, ServiceError> {
        let Some(meta) = &view.state.meta else {
            return Ok(None);
        };
        let Some(org) = self.accounts.org(&meta.owner)? else {
            return Ok(None);
        };
        let key = self.accounts.org_signing_key(&org.login);
        if view.state.role(&key.public()) != Some(Role::Owner) {
            // Created by a member before organizations had keys: that member owns it.
            return Ok(None);
        }
        let role = self.accounts.membership(&org.login, &who.user.login)?;
        Ok((role == Some(OrgRole::Admin)).then_some(key))
    }

    /// Creates repository `{who}/{new.name}`, signed by `who` (its Owner).
    pub async fn create_user_repo(
        &self,
        who: &Authed,
        new: NewRepo,
    ) -> Result<Arc<RepoView>, ServiceError> {
        who.require(Scope::Repo)?;
        let key = self.accounts.signing_key(&who.user)?;
        let auto_init = new.auto_init;
        let view = self.create_signed(&key, &who.user.login, new).await?;
        self.initialise(who, view, auto_init).await
    }

    /// Changes the settings of `view` as `who`: a signed `UpdateRepo` for the
    /// description, visibility and default branch, a `RepoSettings` for the name,
    /// homepage, issues and archiving (an admin's, or the organization's for an admin
    /// of the organization that owns it: [`Service::administer`]; the fold checks the
    /// role). Unarchiving goes first and archiving last, so one request can do both
    /// and its other changes. A default branch must exist and a new name must be free,
    /// as on GitHub. What already holds is no operation.
    pub async fn update_repo(
        &self,
        who: &Authed,
        view: &Arc<RepoView>,
        update: RepoUpdate,
    ) -> Result<Arc<RepoView>, ServiceError> {
        who.require(Scope::Repo)?;
        let Some(meta) = view.state.meta.as_ref() else {
            return Err(ServiceError::NotFound);
        };
        if let Some(description) = &update.description {
            check_description(description)?;
        }
        let name = update.name.filter(|n| *n != meta.name);
        if let Some(name) = &name {
            guts_core::validate_repo_name(name).map_err(|e| {
                ServiceError::invalid(
                    "Repository",
                    "name",
                    FieldCode::Invalid,
                    Some(e.to_string()),
                )
            })?;
            let owner = self.served(view).owner;
            if self
                .repos
                .holder(&owner, name)
                .is_some_and(|id| id != view.id)
            {
                return Err(ServiceError::invalid(
                    "Repository",
                    "name",
                    FieldCode::Custom,
                    Some("name already exists on this account".to_string()),
                ));
            }
        }
        if let Some(homepage) = &update.homepage
            && (homepage.len() > guts_core::MAX_HOMEPAGE_BYTES
                || homepage.chars().any(char::is_control))
        {
            return Err(ServiceError::invalid(
                "Repository",
                "homepage",
                FieldCode::Invalid,
                Some(format!(
                    "is too long or not a URL (maximum is {} bytes)",
                    guts_core::MAX_HOMEPAGE_BYTES
                )),
            ));
        }
        let settings = Payload::RepoSettings {
            name,
            homepage: update.homepage.filter(|h| *h != meta.homepage),
            has_issues: update.has_issues.filter(|h| *h != meta.has_issues),
            archived: update.archived.filter(|a| *a != meta.archived),
        };
        let settings = (settings
            != Payload::RepoSettings {
                name: None,
                homepage: None,
                has_issues: None,
                archived: None,
            })
        .then_some(settings);
        let update = RepoUpdate {
            description: update.description,
            private: update.private,
            default_branch: update.default_branch,
            ..RepoUpdate::default()
        };
        if let Some(branch) = &update.default_branch
            && view.state.branch(branch).is_none()
        {
            return Err(ServiceError::invalid(
                "Repository",
                "default_branch",
                FieldCode::Invalid,
                Some(format!(
                    "Cannot update default branch for this repository: there is no branch {branch}"
                )),
            ));
        }
        let described = (update != RepoUpdate::default()).then_some(Payload::UpdateRepo {
            description: update.description,
            private: update.private,
            default_branch: update.default_branch,
        });
        let payloads = if meta.archived {
            [settings, described]
        } else {
            [described, settings]
        };
        let mut view = view.clone();
        for payload in payloads.into_iter().flatten() {
            view = self.administer(who, &view, payload).await?.0;
        }
        Ok(view)
    }

    /// Creates `owner/{new.name}` with its `CreateRepo` signed by `key`.
    pub(crate) async fn create_signed(
        &self,
        key: &Keypair,
        owner: &str,
        new: NewRepo,
    ) -> Result<Arc<RepoView>, ServiceError> {
        let Some(name) = new.name else {
            return Err(ServiceError::invalid(
                "Repository",
                "name",
                FieldCode::MissingField,
                None,
            ));
        };
        check_description(&new.description)?;
        let branch = new.default_branch.as_deref().unwrap_or("main");
        self.repos
            .create(key, owner, &name, &new.description, new.private, branch)
            .await
            .map_err(|e| match e {
                RepoError::NameTaken => ServiceError::Invalid {
                    summary: Some("Repository creation failed."),
                    problems: vec![crate::FieldProblem {
                        resource: "Repository".into(),
                        field: "name".into(),
                        code: FieldCode::Custom,
                        message: Some("name already exists on this account".to_string()),
                    }],
                },
                other => other.into(),
            })
    }
}
