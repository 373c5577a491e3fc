//! Where a repository's archives are downloaded, shared by the REST routes that
//! redirect there (`routes::archives`) and the route that streams them
//! (`routes::downloads`), so the URL is spelled in one place.
//!
//! GitHub answers `/repos/{o}/{r}/tarball/{ref}` with a 302 to codeload
//! (`codeload.github.com/{o}/{r}/legacy.tar.gz/{ref}`); this node is its own codeload,
//! at the same paths under its web origin, addressed by commit id: what a redirect
//! names can never change under the client, and a branch moving between the redirect
//! and the download cannot mix two trees.

use guts_storage::archive::Format;

use crate::browse::Repo;

/// The route templates the downloads are served at (web namespace, beside git).
pub(crate) const TARBALL_ROUTE: &str = "/{owner}/{repo}/legacy.tar.gz/{sha}";
pub(crate) const ZIPBALL_ROUTE: &str = "/{owner}/{repo}/legacy.zip/{sha}";

/// GitHub's archives name their top directory `{owner}-{repo}-{short sha}`.
const SHORT_SHA: usize = 7;

/// The download URL of `repo`'s archive of commit `sha` (lowercase hex).
pub(crate) fn download_url(repo: &Repo, format: Format, sha: &str) -> String {
    let segment = match format {
        Format::TarGz => "legacy.tar.gz",
        Format::Zip => "legacy.zip",
    };
    repo.web(&format!("/{segment}/{sha}"))
}

/// The archive's top directory, also its file name without the extension.
pub(crate) fn top_dir(repo: &Repo, sha: &str) -> String {
    let short = sha.get(..SHORT_SHA).unwrap_or(sha);
    format!("{}-{short}", repo.full.replace('/', "-"))
}

/// The file name a browser saves the archive under.
pub(crate) fn file_name(repo: &Repo, format: Format, sha: &str) -> String {
    let ext = match format {
        Format::TarGz => "tar.gz",
        Format::Zip => "zip",
    };
    format!("{}.{ext}", top_dir(repo, sha))
}
