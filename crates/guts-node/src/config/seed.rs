//! `GUTS_SEED`: the allowlist of repositories a node replicates, and how it is written.

/// `GUTS_SEED`: which repositories a node replicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Seed {
    #[default]
    All,
    /// Lowercase `owner/name` entries, and `owner/*` for all of an owner's.
    Only(Vec<String>),
}

impl Seed {
    pub(super) fn parse(raw: &str) -> Result<Seed, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("all") {
            return Ok(Seed::All);
        }
        let mut entries = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((owner, name)) = entry.split_once('/') else {
                return Err(format!(
                    "`{entry}` must be `all` or owner/name or owner/* entries"
                ));
            };
            guts_core::names::validate_login(owner).map_err(|e| format!("`{entry}`: owner {e}"))?;
            if name != "*" {
                guts_core::names::validate_repo_name(name)
                    .map_err(|e| format!("`{entry}`: repository name {e}"))?;
            }
            entries.push(entry.to_ascii_lowercase());
        }
        if entries.is_empty() {
            return Err("must be `all` or a comma-separated list of owner/name".to_string());
        }
        Ok(Seed::Only(entries))
    }

    /// Whether the repository `owner/name` is replicated.
    pub fn covers(&self, owner: &str, name: &str) -> bool {
        match self {
            Seed::All => true,
            Seed::Only(entries) => {
                let (owner, name) = (owner.to_ascii_lowercase(), name.to_ascii_lowercase());
                entries.iter().any(|e| {
                    e.split_once('/')
                        .is_some_and(|(o, n)| o == owner && (n == "*" || n == name))
                })
            }
        }
    }
}

impl std::fmt::Display for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seed::All => f.write_str("all"),
            Seed::Only(entries) => f.write_str(&entries.join(",")),
        }
    }
}
