//! What requests carry that more than one route module reads: the path parameters of
//! the repository routes (described once for the OpenAPI document), the body of a
//! repository creation (user and organization repositories alike), and the author,
//! committer or tagger and the base64 content of the write routes (contents and git
//! data).

use base64::Engine as _;
use guts_service::{NewRepo, Person};
use guts_storage::write::MAX_WRITE_BLOB_BYTES;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// `{owner}/{repo}`, the path parameters of every repository route.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
pub(crate) struct OwnerRepo {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name (a trailing `.git` is ignored).
    repo: String,
}

/// `{owner}/{repo}/{number}`, the path parameters of the routes of one issue or pull
/// request.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
pub(crate) struct OwnerRepoNumber {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// The issue or pull request number.
    number: u64,
}

/// `{owner}/{repo}/{ref}`, the path parameters of the reads under `commits/{ref}/`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
pub(crate) struct OwnerRepoRef {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// A branch, tag or sha.
    #[param(rename = "ref")]
    reference: String,
}

/// The body of `POST /user/repos` and `POST /orgs/{org}/repos`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CreateRepo {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    /// `public` or `private` (overrides `private` when `private`).
    #[serde(default)]
    visibility: Option<String>,
    /// Short branch name; `main` when absent.
    #[serde(default)]
    default_branch: Option<String>,
    /// An initial commit with a README.
    #[serde(default)]
    auto_init: Option<bool>,
}

impl From<CreateRepo> for NewRepo {
    fn from(body: CreateRepo) -> NewRepo {
        NewRepo {
            private: body.private.unwrap_or(false) || body.visibility.as_deref() == Some("private"),
            name: body.name,
            description: body.description.unwrap_or_default(),
            default_branch: body.default_branch,
            auto_init: body.auto_init.unwrap_or(false),
        }
    }
}

/// An author, committer or tagger in a write request: GitHub requires `name` and
/// `email`; `date` (ISO 8601) defaults to now.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PersonBody {
    name: Option<String>,
    email: Option<String>,
    /// ISO 8601, e.g. `2013-01-05T13:13:22+05:00`.
    date: Option<String>,
}

impl PersonBody {
    /// The person, or GitHub's 422 naming `role`'s missing or invalid field.
    pub(crate) fn into_person(
        self,
        resource: &'static str,
        role: &'static str,
    ) -> Result<Person, ApiError> {
        let name = self
            .name
            .ok_or_else(|| ApiError::missing_field(resource, role))?;
        let email = self
            .email
            .ok_or_else(|| ApiError::missing_field(resource, role))?;
        let time_secs = match self.date {
            None => None,
            Some(date) => Some(crate::time::parse_iso8601(&date).ok_or_else(|| {
                ApiError::invalid_field(resource, role, "date is not an ISO 8601 timestamp")
            })?),
        };
        Ok(Person {
            name,
            email,
            time_secs,
        })
    }
}

/// An optional [`PersonBody`] as a [`Person`].
pub(crate) fn person(
    body: Option<PersonBody>,
    resource: &'static str,
    role: &'static str,
) -> Result<Option<Person>, ApiError> {
    body.map(|b| b.into_person(resource, role)).transpose()
}

/// Base64 as clients send file contents: line breaks and other ASCII whitespace are
/// ignored (GitHub's own answers wrap at 60 characters), padding is required. Content
/// that would decode to more than the largest blob written through the API
/// ([`MAX_WRITE_BLOB_BYTES`]) is refused from its length, before anything is
/// allocated for it.
pub(crate) fn decode_base64(
    resource: &'static str,
    field: &'static str,
    text: &str,
) -> Result<Vec<u8>, ApiError> {
    let digits = text.bytes().filter(|b| !b.is_ascii_whitespace()).count();
    if digits / 4 * 3 > MAX_WRITE_BLOB_BYTES + 2 {
        return Err(ApiError::invalid_field(
            resource,
            field,
            &format!("is too large (maximum is {MAX_WRITE_BLOB_BYTES} bytes)"),
        ));
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ApiError::invalid_field(resource, field, "is not valid base64"))
}
