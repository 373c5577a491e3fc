//! Turning user-supplied text into safe HTML: GitHub-flavoured Markdown, sanitised
//! ([`markdown`]), source files with syntax highlighting ([`highlight`]) and unified
//! patches as rows of a diff table ([`diff`]).

pub mod diff;
pub mod highlight;
pub mod markdown;
