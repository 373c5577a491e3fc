//! Settings pages: the viewer's tokens and password, and a repository's collaborators
//! and protection (for its admins).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use guts_core::{BranchProtection, RequiredChecks, Role};
use guts_service::HookInput;
use guts_storage::Scope;
use maud::html;
use serde::Deserialize;

use crate::WebState;
use crate::error::WebError;
use crate::page::{self, Tab, csrf_field, path_escape, repo_header, repo_path};
use crate::repo;
use crate::session::{Posted, Viewer};

/// The viewer's tokens and sessions, with a form for a new token.
pub(super) async fn tokens(
    State(state): State<WebState>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    render_tokens(&state, &viewer, None)
}

fn render_tokens(
    state: &WebState,
    viewer: &Viewer,
    new_token: Option<&str>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let tokens = state.service.own_tokens(authed)?;
    let body = html! {
        h1 { "Personal access tokens" }
        p { "Tokens work as passwords for git over HTTP and as the token of GitHub API clients. "
            a href="/settings/password" { "Change your password" } "." }
        @if let Some(token) = new_token {
            div.flash-notice role="status" {
                p { "Your new token. Copy it now: it will not be shown again." }
                p { code #new-token { (token) } }
            }
        }
        form #token-form.stack method="post" action="/settings/tokens" {
            (csrf_field(viewer))
            label for="note" { "Note" }
            input #note type="text" name="note" required maxlength="100";
            button #create-token.primary type="submit" { "Generate token" }
        }
        h2 { "Tokens and sessions" }
        ul.list.box {
            @for t in &tokens {
                li.token {
                    strong { (t.name) }
                    " " span.meta {
                        @if t.web_session { "browser session" } @else { "token" }
                        " · created " (page::time(t.created_at))
                        @if t.id == authed.token.id { " · this session" }
                    }
                    form method="post" action=(format!("/settings/tokens/{}/revoke", t.id)) style="display:inline" {
                        (csrf_field(viewer))
                        " " button.danger type="submit" { "Revoke" }
                    }
                }
            }
        }
    };
    Ok(page::page(viewer, "Tokens", body))
}

#[derive(Debug, Deserialize)]
pub(super) struct NewToken {
    #[serde(default)]
    note: String,
}

/// Makes a token (scope `repo`) and shows it once.
pub(super) async fn create_token(
    State(state): State<WebState>,
    Posted { viewer, form }: Posted<NewToken>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let token = state
        .service
        .create_own_token(authed, &form.note, vec![Scope::Repo])
        .await?;
    render_tokens(&state, &viewer, Some(token.token.expose()))
}

/// Revokes a token or a session of the viewer's.
pub(super) async fn revoke_token(
    State(state): State<WebState>,
    Path(id): Path<u64>,
    Posted { viewer, .. }: Posted<serde::de::IgnoredAny>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    state.service.revoke_own_token(authed, id).await?;
    Ok(Redirect::to("/settings/tokens").into_response())
}

/// The form that changes the viewer's password.
pub(super) async fn password_form(viewer: Viewer) -> Result<Response, WebError> {
    viewer.require()?;
    let body = html! {
        h1 { "Change password" }
        form #password-form.stack method="post" action="/settings/password" {
            (csrf_field(&viewer))
            label for="current_password" { "Current password" }
            input #current_password type="password" name="current_password" autocomplete="current-password";
            label for="new_password" { "New password (8 characters or more)" }
            input #new_password type="password" name="new_password" autocomplete="new-password" required minlength="8";
            button.primary type="submit" { "Change password" }
        }
    };
    Ok(page::page(&viewer, "Password", body))
}

#[derive(Debug, Deserialize)]
pub(super) struct PasswordChange {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the viewer's password, given the current one.
pub(super) async fn change_password(
    State(state): State<WebState>,
    Posted { viewer, form }: Posted<PasswordChange>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    state
        .service
        .change_password(authed, &form.current_password, &form.new_password)
        .await?;
    let body = html! {
        h1 { "Change password" }
        p.flash-notice role="status" { "Your password was changed." }
    };
    Ok(page::page(&viewer, "Password", body))
}

fn permission_name(role: Role) -> &'static str {
    match role {
        Role::Read => "read",
        Role::Write => "write",
        Role::Admin => "admin",
        Role::Owner => "owner",
    }
}

/// A repository's settings: who has access, and the branch protections.
pub(super) async fn repo_settings(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    if access.role < Some(Role::Admin) {
        return Err(WebError::forbidden(
            "Only the repository's admins can change its settings.",
        ));
    }
    let base = repo_path(&access);
    let members = state.service.members(&access.view, Role::Read);
    let authed = viewer.require()?;
    let hooks = state.service.hooks(authed, &access)?;
    let protections = &access.view.state.protections;
    let body = html! {
        (repo_header(&access, Tab::Settings))
        h2 { "Collaborators" }
        ul.list.box {
            @for (user, role) in &members {
                li.collaborator {
                    a href=(format!("/{}", path_escape(&user.login))) { (user.login) }
                    " " span.badge { (permission_name(*role)) }
                }
            }
        }
        form #collaborator-form.stack method="post" action=(format!("{base}/settings/collaborators")) {
            (csrf_field(&viewer))
            label for="collaborator-login" { "Add a collaborator" }
            input #collaborator-login type="text" name="login" required placeholder="login";
            label for="permission" { "Permission" }
            select #permission name="permission" {
                option value="pull" { "Read" }
                option value="push" selected { "Write" }
                option value="admin" { "Admin" }
            }
            button #add-collaborator.primary type="submit" { "Add" }
        }
        h2 { "Branch protection" }
        ul.list.box #protections {
            @for (branch, rule) in protections {
                @let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
                li.protection {
                    code { (short) }
                    span.meta {
                        " · " (rule.required_approvals) " approving reviews required"
                        @if let Some(checks) = &rule.required_checks {
                            " · checks: " (checks.contexts.join(", "))
                        }
                        @if rule.no_force_push { " · no force pushes" }
                        @if rule.no_deletion { " · no deletion" }
                    }
                    form method="post" action=(format!("{base}/settings/protection")) style="display:inline" {
                        (csrf_field(&viewer))
                        input type="hidden" name="branch" value=(short);
                        input type="hidden" name="remove" value="1";
                        " " button.danger type="submit" { "Remove" }
                    }
                }
            }
            @if protections.is_empty() { li.muted { "No branch is protected." } }
        }
        form #protection-form.stack method="post" action=(format!("{base}/settings/protection")) {
            (csrf_field(&viewer))
            label for="protect-branch" { "Protect a branch" }
            input #protect-branch type="text" name="branch" required value=(crate::repo::default_branch(&access));
            label for="protect-approvals" { "Approving reviews required" }
            input #protect-approvals type="number" name="approvals" min="0" max="6" value="1";
            label for="protect-checks" { "Required status checks (comma-separated contexts)" }
            input #protect-checks type="text" name="checks";
            button #protect.primary type="submit" { "Save protection" }
        }
        h2 { "Webhooks" }
        ul.list.box #hooks {
            @for (id, hook) in &hooks {
                @let number = guts_storage::accounts::numeric_id(id.as_bytes());
                li.hook {
                    code { (hook.config.url) }
                    span.meta {
                        " · " (hook.config.events.join(", "))
                        @if !hook.config.active { " · inactive" }
                        @if hook.config.secret.is_empty() { " · unsigned" }
                    }
                    form method="post" action=(format!("{base}/settings/hooks/{number}/delete")) style="display:inline" {
                        (csrf_field(&viewer))
                        " " button.danger type="submit" { "Delete" }
                    }
                }
            }
            @if hooks.is_empty() { li.muted { "No webhooks." } }
        }
        form #hook-form.stack method="post" action=(format!("{base}/settings/hooks")) {
            (csrf_field(&viewer))
            label for="hook-url" { "Payload URL" }
            input #hook-url type="text" name="url" required placeholder="https://ci.example.com/hooks";
            label for="hook-secret" { "Secret (signs every delivery)" }
            input #hook-secret type="password" name="secret" autocomplete="off";
            label for="hook-events" { "Events (comma-separated, * for all)" }
            input #hook-events type="text" name="events" value="push";
            button #add-hook.primary type="submit" { "Add webhook" }
        }
    };
    Ok(page::page(&viewer, "Settings", body))
}

#[derive(Debug, Deserialize)]
pub(super) struct AddCollaborator {
    #[serde(default)]
    login: String,
    #[serde(default)]
    permission: String,
}

/// Gives a user a role in the repository.
pub(super) async fn add_collaborator(
    State(state): State<WebState>,
    Path((owner, name)): Path<(String, String)>,
    Posted { viewer, form }: Posted<AddCollaborator>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    state
        .service
        .set_collaborator(
            authed,
            &access.view,
            form.login.trim(),
            Some(&form.permission),
        )
        .await?;
    Ok(Redirect::to(&format!("{}/settings", repo_path(&access))).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct NewHook {
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    events: String,
}

/// Adds a webhook (the service checks the URL against the node's outbound policy).
pub(super) async fn add_hook(
    State(state): State<WebState>,
    Path((owner, name)): Path<(String, String)>,
    Posted { viewer, form }: Posted<NewHook>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let events: Vec<String> = form
        .events
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    let input = HookInput {
        url: Some(form.url.trim().to_string()),
        content_type: Some("json".to_string()),
        secret: (!form.secret.is_empty()).then_some(form.secret),
        events: (!events.is_empty()).then_some(events),
        ..HookInput::default()
    };
    state.service.create_hook(authed, &access, input).await?;
    Ok(Redirect::to(&format!("{}/settings", repo_path(&access))).into_response())
}

/// Deletes a webhook.
pub(super) async fn delete_hook(
    State(state): State<WebState>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Posted { viewer, .. }: Posted<serde::de::IgnoredAny>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    state.service.delete_hook(authed, &access, number).await?;
    Ok(Redirect::to(&format!("{}/settings", repo_path(&access))).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ProtectionForm {
    #[serde(default)]
    branch: String,
    #[serde(default)]
    approvals: String,
    #[serde(default)]
    checks: String,
    remove: Option<String>,
}

/// Protects a branch (no force pushes, no deletion, the approvals and checks given), or
/// removes its protection.
pub(super) async fn protect(
    State(state): State<WebState>,
    Path((owner, name)): Path<(String, String)>,
    Posted { viewer, form }: Posted<ProtectionForm>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let protection = if form.remove.is_some() {
        None
    } else {
        let approvals = match form.approvals.trim() {
            "" => 0,
            n => n
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 6)
                .ok_or_else(|| WebError::bad_request("Approving reviews must be 0 to 6."))?,
        };
        let contexts: Vec<String> = form
            .checks
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        Some(BranchProtection {
            no_force_push: true,
            no_deletion: true,
            required_approvals: approvals,
            dismiss_stale_reviews: false,
            required_checks: (!contexts.is_empty()).then_some(RequiredChecks {
                strict: false,
                contexts,
            }),
        })
    };
    state
        .service
        .set_branch_protection(authed, &access.view, form.branch.trim(), protection)
        .await?;
    Ok(Redirect::to(&format!("{}/settings", repo_path(&access))).into_response())
}
