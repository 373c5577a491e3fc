//! A repository's tags as GitHub lists them (`tag`) and its languages (`language`).

use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};

use crate::browse::Repo;

/// GitHub's `tag`: a tag's name, the commit it names, and its archives (served by
/// `routes::archives`).
#[derive(Debug, Serialize)]
pub(crate) struct Tag {
    name: String,
    commit: TagCommit,
    zipball_url: String,
    tarball_url: String,
    node_id: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct TagCommit {
    sha: String,
    url: String,
}

impl Tag {
    /// Tag `name` of `repo`, naming commit `sha` (annotated tags peeled).
    pub(crate) fn new(repo: &Repo, name: String, sha: String) -> Tag {
        Tag {
            zipball_url: repo.api(&format!("/zipball/{name}")),
            tarball_url: repo.api(&format!("/tarball/{name}")),
            node_id: format!("REF_{}_{}", repo.view.id, hex::encode(name.as_bytes())),
            commit: TagCommit {
                url: repo.api(&format!("/commits/{sha}")),
                sha,
            },
            name,
        }
    }
}

/// GitHub's `language`: an object of language name to bytes, most first (a map, so
/// its order is the order given).
#[derive(Debug)]
pub(crate) struct Languages(pub(crate) Vec<(&'static str, u64)>);

impl Serialize for Languages {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (language, bytes) in &self.0 {
            map.serialize_entry(language, bytes)?;
        }
        map.end()
    }
}
