//! The OpenAPI 3 document of the REST API, generated from the handlers' own
//! `#[utoipa::path]` annotations (collected by each module's `OpenApiRouter`) and served
//! at `GET /api/v3/openapi.json`. What lives here: the document's header, the shared
//! schemas of JSON built with `json!` (users, repositories, GitHub's error body), and
//! the post-processing every operation gets (GitHub's error JSON as `default`).

use axum::extract::State;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, ResponseBuilder, Schema, content::Content};
use utoipa::{Modify, OpenApi};

/// The header of the document; paths come from the routers merged in [`crate::router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Guts REST API",
        description = "GitHub REST v3 shapes under /api/v3, plus the admin API under /admin.",
    ),
    components(schemas(schemas::GithubError, crate::error::FieldError)),
    modifiers(&TokenAuth),
)]
pub(crate) struct ApiDoc;

/// `Authorization: token <personal access token>` (also `Bearer`), as GitHub takes it.
struct TokenAuth;

impl Modify for TokenAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`token <token>` or `Bearer <token>`",
            ))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`token <GUTS_ADMIN_TOKEN>` (the admin API only)",
            ))),
        );
    }
}

/// Gives every operation GitHub's error JSON as its `default` response, so clients
/// (and schemathesis) know the shape of every 4xx/5xx without each handler repeating it.
pub(crate) fn with_error_defaults(mut doc: Document) -> Document {
    let error = ResponseBuilder::new()
        .description("GitHub's error JSON")
        .content(
            "application/json",
            Content::new(Some(RefOr::<Schema>::Ref(
                utoipa::openapi::Ref::from_schema_name("GithubError"),
            ))),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            op.responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| RefOr::T(error.clone()));
        }
    }
    doc
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The document as JSON, rendered once at start-up.
pub(crate) fn render(doc: &Document) -> Bytes {
    serde_json::to_vec(doc)
        .map(Bytes::from)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "OpenAPI document not serialisable");
            Bytes::from_static(b"{}")
        })
}

/// `GET /api/v3/openapi.json`.
pub(crate) async fn serve(State(doc): State<Bytes>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc)
}

/// Schemas of the JSON the handlers build with `json!` (GitHub's shapes are large and
/// mostly constant, so they are written as values, and described here). Only the
/// fields a client relies on are listed; the objects carry more.
pub mod schemas {
    use serde::Serialize;
    use utoipa::ToSchema;

    /// GitHub's error body: every 4xx and 5xx of the API.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct GithubError {
        pub message: String,
        pub documentation_url: String,
        /// The status code as a string, as GitHub sends it.
        pub status: String,
        /// Validation failures (422).
        #[schema(nullable = false)]
        pub errors: Option<Vec<crate::error::FieldError>>,
    }

    /// The short user object GitHub embeds (`owner`, `user`, …).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct SimpleUser {
        pub login: String,
        pub id: u64,
        pub node_id: String,
        pub url: String,
        pub html_url: String,
        pub repos_url: String,
        /// `User` or `Organization`.
        #[serde(rename = "type")]
        pub kind: String,
        pub site_admin: bool,
    }

    /// The full user object (`GET /user`, `GET /users/{username}`). Creation answers
    /// also carry `token`, shown once.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct User {
        pub login: String,
        pub id: u64,
        pub node_id: String,
        pub url: String,
        pub html_url: String,
        #[serde(rename = "type")]
        pub kind: String,
        pub site_admin: bool,
        pub created_at: String,
        pub updated_at: String,
        /// The first token of a new account (creation answers only).
        #[schema(nullable = false)]
        pub token: Option<String>,
        /// Whether the account is suspended (admin API answers only).
        #[schema(nullable = false)]
        pub suspended: Option<bool>,
    }

    /// What the caller may do in a repository (present when the caller is known).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct RepoPermissions {
        pub admin: bool,
        pub maintain: bool,
        pub push: bool,
        pub triage: bool,
        pub pull: bool,
    }

    /// GitHub's repository object.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Repository {
        pub id: u64,
        pub node_id: String,
        pub name: String,
        pub full_name: String,
        pub owner: SimpleUser,
        pub private: bool,
        pub html_url: String,
        pub description: Option<String>,
        pub url: String,
        pub clone_url: String,
        pub created_at: String,
        pub updated_at: String,
        pub pushed_at: String,
        pub visibility: String,
        pub default_branch: String,
        #[schema(nullable = false)]
        pub permissions: Option<RepoPermissions>,
    }

    /// `{"enabled": bool}`, GitHub's shape for a protection switch.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Enabled {
        pub enabled: bool,
    }

    /// A branch's protection as GitHub reports it.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct BranchProtection {
        pub url: String,
        pub required_pull_request_reviews: Option<serde_json::Value>,
        pub allow_force_pushes: Enabled,
        pub allow_deletions: Enabled,
    }

    /// `GET …/collaborators/{username}/permission`.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct CollaboratorPermission {
        /// `admin`, `write`, `read` or `none`.
        pub permission: String,
        pub role_name: String,
        pub user: Login,
    }

    #[derive(Debug, Serialize, ToSchema)]
    pub struct Login {
        pub login: String,
    }

    /// A personal access token as the admin API lists it; `token` only on creation.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Token {
        pub id: u64,
        pub name: String,
        pub scopes: Vec<String>,
        pub created_at: String,
        pub revoked: bool,
        #[schema(nullable = false)]
        pub token: Option<String>,
    }

    /// GitHub's organization object.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Organization {
        pub login: String,
        pub id: u64,
        pub node_id: String,
        pub url: String,
        pub repos_url: String,
        pub members_url: String,
        pub html_url: String,
        pub public_repos: u64,
        pub created_at: String,
        #[serde(rename = "type")]
        pub kind: String,
    }

    /// GitHub's organization membership object.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct OrgMembership {
        pub url: String,
        /// Always `active`: Guts adds members at once.
        pub state: String,
        /// `admin` or `member`.
        pub role: String,
        pub organization_url: String,
        pub organization: SimpleUser,
        pub user: SimpleUser,
    }
}
