//! Turning user-supplied text into safe HTML: GitHub-flavoured Markdown, sanitised
//! ([`markdown`]), and source files with syntax highlighting ([`highlight`]).

pub mod highlight;
pub mod markdown;
