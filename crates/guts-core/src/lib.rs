//! Pure domain of Guts: identities, signed operations and their canonical encoding,
//! the per-repository operation DAG, and its deterministic fold into state.
//!
//! Architecture invariant: no I/O, no async, no clocks read implicitly, no randomness
//! except key generation. Everything here is a function of its arguments, so it can be
//! tested exhaustively and fuzzed.
//!
//! The path of an operation through this crate: an [`Operation`] is signed into a
//! [`SignedOp`] (or decoded into one from untrusted bytes, which verifies it), inserted
//! into its repository's [`RepoDag`], and [`fold()`] turns the DAG into a [`RepoState`].

pub mod check_runs;
pub mod checks;
pub mod codec;
pub mod collab;
pub mod dag;
pub mod fold;
pub mod hlc;
pub mod hooks;
pub mod identity;
pub mod ids;
pub mod names;
pub mod op;

#[cfg(test)]
pub(crate) mod arbitrary;

pub use check_runs::{CheckOutput, CheckRun, CheckRunFields, CheckStatus, Conclusion};
pub use checks::{Checks, CommitStatus, StatusState};
pub use codec::{DecodeError, EncodeError};
pub use collab::{
    Assignment, Collab, Comment, InlineComment, LabelDef, MergeMethod, Merged, Pull, Review,
    ReviewComment, TextRef, Thread, ThreadEdit, Verdict,
};
pub use dag::{DagError, Inserted, RepoDag};
pub use fold::{
    Access, Ancestry, AppendError, Fold, FrontierError, MAX_FORMER_NAMES, MAX_HOMEPAGE_BYTES,
    ProtectedAction, RefState, Rejection, RepoHeader, RepoMeta, RepoState, append_at_frontier,
    fold, folds_at_frontier,
};
pub use hlc::{Clock, ClockError, Hlc};
pub use identity::{KeyParseError, Keypair, PublicKey};
pub use ids::{IdParseError, ObjectId, OpId, RepoId};
pub use names::{
    NameError, validate_branch_name, validate_login, validate_ref_name, validate_repo_name,
};
pub use op::{BranchProtection, Operation, Payload, RequiredChecks, Role, SignedOp};
