//! Signing in and out (`/login`, `/logout`). The password check, its rate limits and
//! the session's token are guts-service's; this module renders the form and turns a
//! session into a sealed cookie.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use guts_ops::Client;
use guts_service::ServiceError;
use http::StatusCode;
use http::header::SET_COOKIE;
use maud::html;
use serde::Deserialize;

use crate::WebState;
use crate::error::{WebError, local_path};
use crate::page::{self, csrf_field};
use crate::session::{Posted, SESSION_COOKIE, Viewer, cookie_header, session_cookie};

#[derive(Debug, Deserialize)]
pub(super) struct ReturnTo {
    return_to: Option<String>,
}

fn login_page(viewer: &Viewer, return_to: Option<&str>, error: Option<&str>) -> maud::Markup {
    html! {
        div.box style="max-width: 360px; margin: 32px auto" {
            div.box-header { h1 { "Sign in to Guts" } }
            div.box-body {
                @if let Some(error) = error { p.flash-error role="alert" { (error) } }
                form #login-form.stack method="post" action="/login" {
                    (csrf_field(viewer))
                    @if let Some(to) = return_to.and_then(local_path) {
                        input type="hidden" name="return_to" value=(to);
                    }
                    label for="login" { "Username" }
                    input #login type="text" name="login" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button #sign-in.primary type="submit" { "Sign in" }
                }
            }
        }
    }
}

/// The sign-in form.
pub(super) async fn form(viewer: Viewer, Query(q): Query<ReturnTo>) -> Response {
    if viewer.authed.is_some() {
        return Redirect::to(q.return_to.as_deref().and_then(local_path).unwrap_or("/"))
            .into_response();
    }
    page::page(
        &viewer,
        "Sign in",
        login_page(&viewer, q.return_to.as_deref(), None),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct Credentials {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    return_to: Option<String>,
}

/// Checks the credentials; on success sets the session cookie and goes back to where
/// the visitor was headed.
pub(super) async fn sign_in(
    State(state): State<WebState>,
    client: Option<axum::Extension<Client>>,
    Posted { viewer, form }: Posted<Credentials>,
) -> Result<Response, WebError> {
    let from = client.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip);
    match state
        .service
        .sign_in(form.login.trim(), &form.password, from)
        .await
    {
        Ok(signed_in) => {
            let secure = viewer.origin.starts_with("https:");
            let cookie = session_cookie(&state, signed_in.token.expose(), secure)?;
            let to = form
                .return_to
                .as_deref()
                .and_then(local_path)
                .unwrap_or("/");
            Ok(([(SET_COOKIE, cookie)], Redirect::to(to)).into_response())
        }
        Err(ServiceError::BadCredentials) => {
            let body = login_page(
                &viewer,
                form.return_to.as_deref(),
                Some("Incorrect username or password."),
            );
            let mut response = page::page(&viewer, "Sign in", body);
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

/// Ends the session everywhere and clears the cookie.
pub(super) async fn sign_out(
    State(state): State<WebState>,
    Posted { viewer, .. }: Posted<serde::de::IgnoredAny>,
) -> Result<Response, WebError> {
    if let Some(authed) = &viewer.authed {
        state.service.sign_out(authed).await?;
    }
    let secure = viewer.origin.starts_with("https:");
    let clear = cookie_header(SESSION_COOKIE, "", 0, secure)?;
    Ok(([(SET_COOKIE, clear)], Redirect::to("/")).into_response())
}
