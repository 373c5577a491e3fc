//! Proptest generators for the request types, kept next to the types so every module's
//! tests build values the same way, plus a hand-assembled body helper.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::deepen::Deepen;
use crate::oid::Oid;
use crate::pktline;
use crate::v0::{
    ReceiveCapabilities, ReceiveRequest, RefUpdate, UploadCapabilities, UploadRequest,
};
use crate::v2::{ClientCapabilities, Command, CommandRequest, FetchArgs, LsRefsArgs, Request};

/// A predicate on a parse error, for tables of malformed inputs.
pub(crate) type ErrorCheck = fn(&crate::error::ParseError) -> bool;

/// A body of pkt-lines: "0000", "0001" and "0002" are written as-is, other strings as
/// data packets (so the lengths are right by construction).
pub(crate) fn pkts(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        match *line {
            "0000" | "0001" | "0002" => out.extend_from_slice(line.as_bytes()),
            _ => pktline::write_data(&mut out, line.as_bytes()).unwrap(),
        }
    }
    out
}

/// Ids from a small pool, so generated lists repeat some (duplicates are legal).
pub(crate) fn oid() -> impl Strategy<Value = Oid> {
    prop_oneof![
        1 => Just(Oid::ZERO),
        8 => (0u8..16).prop_map(|b| Oid::from_bytes([b; 20])),
        4 => any::<[u8; 20]>().prop_map(Oid::from_bytes),
    ]
}

pub(crate) fn ref_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("refs/heads/main".to_owned()),
        "refs/(heads|tags|pull)/[a-z0-9._/-]{1,20}",
        "refs/heads/[\u{e9}\u{4e2d}a-z]{1,5}",
    ]
}

/// Printable ASCII without spaces, like an agent string.
fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,20}"
}

/// Text without control characters, like a filter spec or push option.
fn text() -> impl Strategy<Value = String> {
    "[ -~\u{e9}]{0,20}"
}

fn unknown_caps() -> impl Strategy<Value = Vec<String>> {
    vec("x-[a-z]{1,8}(=[a-z0-9]{1,4})?", 0..3)
}

pub(crate) fn deepen() -> impl Strategy<Value = Deepen> {
    prop_oneof![
        (1u32..).prop_map(Deepen::Depth),
        (any::<u64>(), vec(ref_name(), 0..3)).prop_map(|(since, not)| Deepen::Cut {
            since: Some(since),
            not
        }),
        vec(ref_name(), 1..3).prop_map(|not| Deepen::Cut { since: None, not }),
    ]
}

pub(crate) fn upload_capabilities() -> impl Strategy<Value = UploadCapabilities> {
    (
        any::<[bool; 12]>(),
        0u8..3,
        option::of(token()),
        option::of(token()),
        unknown_caps(),
    )
        .prop_map(
            |(f, side_band, agent, session_id, unknown)| UploadCapabilities {
                multi_ack: f[0],
                multi_ack_detailed: f[1],
                no_done: f[2],
                side_band: side_band == 1,
                side_band_64k: side_band == 2,
                thin_pack: f[3],
                ofs_delta: f[4],
                no_progress: f[5],
                include_tag: f[6],
                deepen_relative: f[7],
                deepen_since: f[8],
                deepen_not: f[9],
                filter: f[10],
                agent,
                session_id,
                unknown,
            },
        )
}

pub(crate) fn upload_request() -> impl Strategy<Value = UploadRequest> {
    (
        vec(oid(), 1..8),
        upload_capabilities(),
        vec(oid(), 0..3),
        option::of(deepen()),
        option::of(text()),
        vec(oid(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(wants, mut caps, shallows, deepen, filter, haves, done)| {
            caps.filter |= filter.is_some();
            UploadRequest {
                wants,
                caps,
                shallows,
                deepen,
                filter,
                haves,
                done,
            }
        })
}

pub(crate) fn receive_capabilities() -> impl Strategy<Value = ReceiveCapabilities> {
    (
        any::<[bool; 8]>(),
        option::of(token()),
        option::of(token()),
        unknown_caps(),
    )
        .prop_map(|(f, agent, session_id, unknown)| ReceiveCapabilities {
            report_status: f[0],
            report_status_v2: f[1],
            delete_refs: f[2],
            side_band_64k: f[3],
            quiet: f[4],
            atomic: f[5],
            ofs_delta: f[6],
            push_options: f[7],
            agent,
            session_id,
            unknown,
        })
}

pub(crate) fn receive_request() -> impl Strategy<Value = ReceiveRequest> {
    (
        vec((oid(), oid(), ref_name()), 1..6),
        receive_capabilities(),
        vec(oid(), 0..3),
        // Not starting with "ERR ", which would make the line an error packet.
        vec("[a-z][ -~\u{e9}]{0,20}", 0..3),
    )
        .prop_map(|(commands, caps, shallows, options)| {
            let push_options = if caps.push_options {
                options
            } else {
                Vec::new()
            };
            ReceiveRequest {
                commands: commands
                    .into_iter()
                    .map(|(old, new, name)| RefUpdate { old, new, name })
                    .collect(),
                caps,
                shallows,
                push_options,
            }
        })
}

fn client_capabilities() -> impl Strategy<Value = ClientCapabilities> {
    (option::of(token()), option::of(token()), vec(text(), 0..3)).prop_map(
        |(agent, session_id, server_options)| ClientCapabilities {
            agent,
            session_id,
            server_options,
        },
    )
}

fn ls_refs_args() -> impl Strategy<Value = LsRefsArgs> {
    (
        any::<[bool; 3]>(),
        vec(
            prop_oneof![Just(String::new()), Just("HEAD".to_owned()), ref_name()],
            0..4,
        ),
    )
        .prop_map(|(f, ref_prefixes)| LsRefsArgs {
            symrefs: f[0],
            peel: f[1],
            unborn: f[2],
            ref_prefixes,
        })
}

fn fetch_args() -> impl Strategy<Value = FetchArgs> {
    (
        (vec(oid(), 0..5), vec(ref_name(), 0..3), vec(oid(), 0..5)),
        any::<[bool; 8]>(),
        vec(oid(), 0..3),
        option::of(deepen()),
        option::of(text()),
    )
        .prop_map(
            |((wants, want_refs, haves), f, shallows, deepen, filter)| FetchArgs {
                wants,
                want_refs,
                haves,
                done: f[0],
                thin_pack: f[1],
                no_progress: f[2],
                include_tag: f[3],
                ofs_delta: f[4],
                shallows,
                deepen,
                deepen_relative: f[5],
                filter,
                sideband_all: f[6],
                wait_for_done: f[7],
            },
        )
}

pub(crate) fn v2_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        1 => Just(Request::End),
        8 => (
            prop_oneof![
                ls_refs_args().prop_map(Command::LsRefs),
                fetch_args().prop_map(Command::Fetch),
            ],
            client_capabilities(),
        )
            .prop_map(|(command, caps)| Request::Command(CommandRequest { command, caps })),
    ]
}

/// Bodies made of plausible lines (right keywords, sometimes wrong values) and special
/// packets, so that "never panics" properties reach deep into the parsers rather than
/// failing at the first length header.
pub(crate) fn request_lines() -> impl Strategy<Value = Vec<u8>> {
    let keyword = prop_oneof![
        Just("want "),
        Just("have "),
        Just("shallow "),
        Just("deepen "),
        Just("deepen-since "),
        Just("deepen-not "),
        Just("filter "),
        Just("done"),
        Just("command=fetch"),
        Just("command=ls-refs"),
        Just("agent="),
        Just("object-format="),
        Just("server-option="),
        Just("ref-prefix "),
        Just("want-ref "),
        Just("0000000000000000000000000000000000000000 "),
        Just("push-cert"),
        Just("ERR "),
        Just(""),
    ];
    let tail = prop_oneof![
        Just(String::new()),
        Just("74730d410fcb6603ace96f1dc55ea6196122532d".to_owned()),
        Just("74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/main\0report-status".to_owned()),
        Just("74730d410fcb6603ace96f1dc55ea6196122532d side-band-64k filter".to_owned()),
        "[ -~\0\n]{0,12}",
        "[0-9]{1,25}",
    ];
    let packet = prop_oneof![
        1 => Just(b"0000".to_vec()),
        1 => Just(b"0001".to_vec()),
        1 => Just(b"0002".to_vec()),
        8 => (keyword, tail).prop_map(|(k, t)| {
            let mut out = Vec::new();
            pktline::write_data(&mut out, format!("{k}{t}").as_bytes()).unwrap();
            out
        }),
    ];
    vec(packet, 0..16).prop_map(|packets| packets.concat())
}
