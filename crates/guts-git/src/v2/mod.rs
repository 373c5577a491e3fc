//! Protocol v2 (gitprotocol-v2): a capability advertisement, then one command per
//! request (`ls-refs` to list refs, `fetch` to negotiate and get a pack), each request
//! a message of `command=`/capability lines, a delimiter, argument lines and a flush.
//!
//! Git clients use v2 for fetches and clones by default (they ask with the
//! `Git-Protocol: version=2` header); pushes stay on v0. Over HTTP the advertisement is
//! the body of `GET info/refs?service=git-upload-pack` (without v0's `# service=`
//! preamble: git's http-backend omits it for v2), and each command is one POST.
//!
//! The parsers are strict where git's server is (an unknown command, capability or
//! argument is an error, which the server reports with an `ERR` packet) and check only
//! syntax: whether an argument belongs to a feature the server advertised is the
//! server's decision, helped by [`FetchArgs::unadvertised`].

mod advertise;
mod request;

pub use advertise::{
    CapabilityAdvertisement, FetchFeatures, LsRef, LsRefsFeatures, write_ls_ref, write_ls_refs,
};
pub use request::{
    ClientCapabilities, Command, CommandRequest, FetchArgs, LsRefsArgs, Request, parse_request,
};
