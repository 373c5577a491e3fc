//! The OpenAPI 3 document of the REST API, generated from the handlers' own
//! `#[utoipa::path]` annotations (collected by each module's `OpenApiRouter`) and served
//! at `GET /api/v3/openapi.json`. What lives here: the document's header, the shared
//! schemas of the typed views (users, repositories, issues, pull requests, git data,
//! GitHub's error body), and the post-processing of the collected paths
//! ([`finish`]: GitHub's error JSON as every operation's `default`, axum's wildcard
//! templates in OpenAPI's spelling, one parameter per name and location).

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

/// The document as served, from the paths the routers collected.
pub(crate) fn finish(doc: Document) -> Document {
    without_wildcards(one_parameter_per_name(with_error_defaults(doc)))
}

/// Gives every operation GitHub's error JSON as its `default` response, so clients
/// (and schemathesis) know the shape of every 4xx/5xx without each handler repeating it.
fn with_error_defaults(mut doc: Document) -> Document {
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

/// Keeps the first parameter of each (name, location): with axum's extractors, utoipa
/// adds an undescribed copy of each `Path` tuple element next to the parameters an
/// `IntoParams` struct (`OwnerRepo`, …) already declares, and OpenAPI forbids twins.
fn one_parameter_per_name(mut doc: Document) -> Document {
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            let Some(params) = op.parameters.as_mut() else {
                continue;
            };
            let mut seen = Vec::new();
            params.retain(|p| match p {
                RefOr::T(p) => {
                    let key = (p.name.clone(), p.parameter_in.clone());
                    let first = !seen.contains(&key);
                    seen.push(key);
                    first
                }
                RefOr::Ref(_) => true,
            });
        }
    }
    doc
}

/// A wildcard route is annotated with axum's template (`{*path}`), from which
/// `routes!` builds the route; OpenAPI spells the parameter `{path}`.
fn without_wildcards(mut doc: Document) -> Document {
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(template, item)| (template.replace("{*", "{"), item))
        .collect();
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

/// Schemas of the typed views the handlers render, described by hand (see the module).
pub mod schemas;
