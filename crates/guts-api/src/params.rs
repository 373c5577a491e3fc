//! What requests carry that more than one route module reads: the path parameters of
//! the repository routes (described once for the OpenAPI document), the body of a
//! repository creation (user and organization repositories alike), and the author,
//! committer or tagger and the base64 content of the write routes (contents and git
//! data), and a webhook as clients send it (repository and organization hooks).

use base64::Engine as _;
use guts_service::{HookInput, NewRepo, Person};
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

/// A hook's `config`, as clients send it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ConfigBody {
    /// Where deliveries go: an http or https URL.
    pub(crate) url: Option<String>,
    /// `json` or `form` (default `form`).
    pub(crate) content_type: Option<String>,
    /// The HMAC key of `X-Hub-Signature-256`; empty removes it.
    pub(crate) secret: Option<String>,
    /// `"0"` (check certificates, the default) or `"1"`.
    #[schema(value_type = Option<String>)]
    pub(crate) insecure_ssl: Option<serde_json::Value>,
}

/// `POST hooks` and `PATCH hooks/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct HookBody {
    /// `web` (the only kind).
    pub(crate) name: Option<String>,
    pub(crate) config: Option<ConfigBody>,
    /// The events to send (default `["push"]`; `*` for all).
    pub(crate) events: Option<Vec<String>>,
    /// Events to add (editing).
    #[serde(default)]
    pub(crate) add_events: Vec<String>,
    /// Events to remove (editing).
    #[serde(default)]
    pub(crate) remove_events: Vec<String>,
    /// Whether deliveries are made (default true).
    pub(crate) active: Option<bool>,
}

/// GitHub's `insecure_ssl`: `"0"`/`"1"` or a number.
fn insecure(value: Option<&serde_json::Value>) -> Result<Option<bool>, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s == "0" => Ok(Some(false)),
        Some(serde_json::Value::String(s)) if s == "1" => Ok(Some(true)),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
        Some(_) => Err(ApiError::invalid_field(
            "Hook",
            "insecure_ssl",
            "insecure_ssl must be \"0\" or \"1\"",
        )),
    }
}

impl HookBody {
    /// A body that changes only the configuration (`PATCH hooks/{id}/config`).
    pub(crate) fn config_only(config: ConfigBody) -> HookBody {
        HookBody {
            name: None,
            config: Some(config),
            events: None,
            add_events: Vec::new(),
            remove_events: Vec::new(),
            active: None,
        }
    }

    /// What the service reads.
    pub(crate) fn input(self) -> Result<HookInput, ApiError> {
        if self.name.as_deref().is_some_and(|n| n != "web") {
            return Err(ApiError::invalid_field("Hook", "name", "name must be web"));
        }
        let config = self.config.unwrap_or_default();
        Ok(HookInput {
            insecure_ssl: insecure(config.insecure_ssl.as_ref())?,
            url: config.url,
            content_type: config.content_type,
            secret: config.secret,
            events: self.events,
            add_events: self.add_events,
            remove_events: self.remove_events,
            active: self.active,
        })
    }
}
