//! What requests carry that more than one route module reads: the path parameters of
//! the repository routes (described once for the OpenAPI document) and the body of a
//! repository creation (user and organization repositories alike).

use guts_service::NewRepo;
use serde::Deserialize;
use utoipa::ToSchema;

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
}

impl From<CreateRepo> for NewRepo {
    fn from(body: CreateRepo) -> NewRepo {
        NewRepo {
            private: body.private.unwrap_or(false) || body.visibility.as_deref() == Some("private"),
            name: body.name,
            description: body.description.unwrap_or_default(),
            default_branch: body.default_branch,
        }
    }
}
