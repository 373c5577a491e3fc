//! What a repository's front page shows about it: its README, the bytes per language
//! of its tree, and who wrote its history. Each walk is bounded, so one small request
//! costs a bounded amount of work and memory whatever the repository holds: trees are
//! walked depth first holding only the trees on the current path and at most
//! [`MAX_TREE_ENTRIES`] entries are visited; history walks stop after
//! [`MAX_CONTRIBUTOR_COMMITS`] commits (newest first) and say so.

use std::collections::{BinaryHeap, HashMap, HashSet};

use super::{
    BrowseError, Browser, EntryKind, MAX_TREE_ENTRIES, Queued, Result, TreeCursor, TreeEntry,
};
use crate::git::Oid;

/// Commits a contributors listing reads at most, newest first. GitHub itself caps the
/// work (it links only the first 500 authors to users); a history longer than this is
/// counted over its newest commits and the answer says it is partial.
pub const MAX_CONTRIBUTOR_COMMITS: usize = 20_000;
/// Bytes of tree objects a languages walk holds at once (the trees on its path).
const MAX_HELD_TREE_BYTES: usize = 64 * 1024 * 1024;

/// Directories searched for the repository's README, in GitHub's order.
const README_DIRS: [&str; 3] = [".github", "", "docs"];

/// README extensions in the order one is preferred when a directory has several
/// (markup GitHub renders first, plain text last).
const README_EXTENSIONS: [&str; 12] = [
    "md", "markdown", "mdown", "mkdn", "rst", "adoc", "asciidoc", "org", "textile", "rdoc", "txt",
    "",
];

/// A README and its bytes (`None` when over the size the caller reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readme {
    pub entry: TreeEntry,
    pub data: Option<Vec<u8>>,
}

/// One author of a history: identified by email, as GitHub groups contributions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The name on the newest of their commits.
    pub name: String,
    /// As written in the newest commit (grouping ignores case).
    pub email: String,
    pub commits: u64,
}

/// The authors of a history, most commits first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authors {
    pub authors: Vec<Author>,
    /// The walk stopped at [`MAX_CONTRIBUTOR_COMMITS`].
    pub truncated: bool,
}

/// The rank of a README file name (lower is preferred), `None` if it is not one.
fn readme_rank(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    let ext = match lower.strip_prefix("readme")? {
        "" => "",
        rest => rest.strip_prefix('.')?,
    };
    Some(
        README_EXTENSIONS
            .iter()
            .position(|e| *e == ext)
            .unwrap_or(README_EXTENSIONS.len()),
    )
}

impl Browser {
    /// The README of `commit`'s tree: in `dir` when given, else the first found in
    /// `.github/`, the root and `docs/` (GitHub's order). Its bytes are read when at
    /// most `max` (and within the request's budget).
    pub fn readme(&self, commit: &Oid, dir: Option<&str>, max: u64) -> Result<Option<Readme>> {
        let root = self.commit(commit)?.tree;
        let dirs: Vec<&str> = match dir {
            Some(dir) => vec![dir.trim_matches('/')],
            None => README_DIRS.to_vec(),
        };
        for dir in dirs {
            let tree = if dir.is_empty() {
                root
            } else {
                match self.entry_at(&root, dir)? {
                    Some(entry) if entry.kind == EntryKind::Dir => entry.id,
                    _ => continue,
                }
            };
            let best = self
                .entries(&tree, dir)?
                .into_iter()
                .filter(|e| e.kind == EntryKind::File)
                .filter_map(|e| {
                    let name = e.path.rsplit('/').next().unwrap_or(&e.path);
                    readme_rank(name).map(|rank| (rank, name.to_string(), e.clone()))
                })
                .min_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            if let Some((_, _, entry)) = best {
                let data = match self.blob(&entry.id, max) {
                    Ok(data) => Some(data),
                    Err(BrowseError::TooLarge { .. }) => None,
                    Err(e) => return Err(e),
                };
                return Ok(Some(Readme { entry, data }));
            }
        }
        Ok(None)
    }

    /// Bytes per language in `commit`'s tree, most first, by file extension (or name,
    /// for `Makefile` and `Dockerfile`), counting programming and markup languages as
    /// GitHub's linguist does (prose and data files, symlinks and submodules are left
    /// out). At most [`MAX_TREE_ENTRIES`] entries are visited.
    pub fn languages(&self, commit: &Oid) -> Result<Vec<(&'static str, u64)>> {
        let root = self.commit(commit)?.tree;
        let mut bytes: HashMap<&'static str, u64> = HashMap::new();
        let mut stack = vec![self.tree_cursor(&root, "")?];
        let mut held = stack.iter().map(TreeCursor::held).sum::<usize>();
        let mut visited = 0usize;
        while let Some(level) = stack.last_mut() {
            let Some(entry) = level.next(self)? else {
                held -= level.held();
                stack.pop();
                continue;
            };
            visited += 1;
            if visited > MAX_TREE_ENTRIES {
                break;
            }
            match entry.kind {
                EntryKind::Dir if !vendored(&entry.path) => {
                    let cursor = self.tree_cursor(&entry.id, &entry.path)?;
                    // Trees too large to hold together are not counted (a hostile
                    // shape, not a real repository).
                    if held + cursor.held() <= MAX_HELD_TREE_BYTES {
                        held += cursor.held();
                        stack.push(cursor);
                    }
                }
                EntryKind::File => {
                    if let Some(language) = language_of(&entry.path) {
                        *bytes.entry(language).or_default() += entry.size.unwrap_or(0);
                    }
                }
                _ => {}
            }
        }
        let mut out: Vec<_> = bytes.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Ok(out)
    }

    /// Commits per author (by email, case-insensitively) reachable from `start`, newest
    /// first, over at most [`MAX_CONTRIBUTOR_COMMITS`] commits.
    pub fn authors(&self, start: &Oid) -> Result<Authors> {
        let mut queue = BinaryHeap::new();
        let mut seen = HashSet::new();
        let mut counts: HashMap<String, Author> = HashMap::new();
        let mut order = Vec::new();
        seen.insert(*start);
        queue.push(Queued(self.commit(start)?));
        let mut walked = 0usize;
        let mut truncated = false;
        while let Some(Queued(commit)) = queue.pop() {
            if walked == MAX_CONTRIBUTOR_COMMITS {
                truncated = true;
                break;
            }
            walked += 1;
            let key = commit.author.email.to_lowercase();
            let author = counts.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Author {
                    name: commit.author.name.clone(),
                    email: commit.author.email.clone(),
                    commits: 0,
                }
            });
            author.commits += 1;
            for parent in commit.parents {
                // The queue is bounded by the walk: each commit is queued once.
                if seen.len() <= MAX_CONTRIBUTOR_COMMITS && seen.insert(parent) {
                    queue.push(Queued(self.commit(&parent)?));
                }
            }
        }
        // Most commits first; ties in the order authors were met (newest first).
        let mut authors: Vec<Author> = order
            .into_iter()
            .filter_map(|key| counts.remove(&key))
            .collect();
        authors.sort_by_key(|a| std::cmp::Reverse(a.commits));
        Ok(Authors { authors, truncated })
    }
}

/// Directories linguist calls vendored (third-party code not counted).
fn vendored(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(name, "node_modules" | "vendor" | "third_party" | ".git")
}

/// The language of a file by its name, for the languages linguist counts.
fn language_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name {
        "Makefile" | "GNUmakefile" | "makefile" => return Some("Makefile"),
        "Dockerfile" | "Containerfile" => return Some("Dockerfile"),
        "CMakeLists.txt" => return Some("CMake"),
        _ => {}
    }
    let ext = name
        .rsplit_once('.')
        .map(|(stem, ext)| (stem, ext.to_ascii_lowercase()));
    let (stem, ext) = ext?;
    if stem.is_empty() {
        return None;
    }
    Some(match ext.as_str() {
        "rs" => "Rust",
        "py" | "pyi" => "Python",
        "js" | "mjs" | "cjs" | "jsx" => "JavaScript",
        "ts" | "mts" | "cts" | "tsx" => "TypeScript",
        "go" => "Go",
        "c" => "C",
        "h" => "C",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "C++",
        "cs" => "C#",
        "java" => "Java",
        "kt" | "kts" => "Kotlin",
        "scala" => "Scala",
        "swift" => "Swift",
        "m" => "Objective-C",
        "mm" => "Objective-C++",
        "rb" => "Ruby",
        "php" => "PHP",
        "pl" | "pm" => "Perl",
        "lua" => "Lua",
        "sh" | "bash" | "zsh" => "Shell",
        "ps1" | "psm1" => "PowerShell",
        "bat" | "cmd" => "Batchfile",
        "hs" => "Haskell",
        "ml" | "mli" => "OCaml",
        "ex" | "exs" => "Elixir",
        "erl" | "hrl" => "Erlang",
        "clj" | "cljs" | "cljc" => "Clojure",
        "el" => "Emacs Lisp",
        "vim" => "Vim Script",
        "r" => "R",
        "jl" => "Julia",
        "dart" => "Dart",
        "zig" => "Zig",
        "nim" => "Nim",
        "nix" => "Nix",
        "groovy" | "gradle" => "Groovy",
        "f90" | "f95" | "f03" | "f" => "Fortran",
        "asm" | "s" => "Assembly",
        "sol" => "Solidity",
        "tf" | "hcl" => "HCL",
        "html" | "htm" => "HTML",
        "css" => "CSS",
        "scss" => "SCSS",
        "sass" => "Sass",
        "less" => "Less",
        "vue" => "Vue",
        "svelte" => "Svelte",
        "tex" => "TeX",
        "ipynb" => "Jupyter Notebook",
        "cmake" => "CMake",
        "proto" => "Protocol Buffer",
        "mk" => "Makefile",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_names_rank_markdown_first() {
        assert_eq!(readme_rank("README.md"), Some(0));
        assert_eq!(readme_rank("readme.MD"), Some(0));
        assert_eq!(readme_rank("README"), Some(11));
        assert!(readme_rank("README.rst") < readme_rank("README.txt"));
        assert_eq!(readme_rank("READMEFIRST"), None);
        assert_eq!(readme_rank("notes.md"), None);
    }

    #[test]
    fn languages_by_name() {
        assert_eq!(language_of("src/lib.rs"), Some("Rust"));
        assert_eq!(language_of("a/Makefile"), Some("Makefile"));
        assert_eq!(language_of("README.md"), None);
        assert_eq!(language_of(".rs"), None);
        assert_eq!(language_of("x.JS"), Some("JavaScript"));
    }
}
