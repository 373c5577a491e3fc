//! guts-git's pkt-line layer on untrusted bytes: `pktline::decode`, `PktReader` and the
//! side-band splitter, which every git request passes through first.
//!
//! Crashes on: a panic; a packet that claims more bytes than the input holds; a decoded
//! packet that the writers do not re-encode to the bytes it was read from (modulo the
//! case of the hex header, which readers accept in either case and writers write in
//! lowercase); a reader whose chunked reading disagrees with reading the whole input;
//! and a side-band payload (the input itself) that does not reassemble after
//! `write_sideband` splits it.
#![no_main]

use guts_git::pktline::{self, Band, Packet, PktReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = PktReader::new(data);
    let mut packets = Vec::new();
    let mut at = 0;
    loop {
        match reader.next_packet() {
            Ok(Some(packet)) => {
                let end = reader.position();
                assert!(end > at && end <= data.len(), "bad position {end}");
                check_reencodes(packet, &data[at..end]);
                if let Some(payload) = packet.data() {
                    let _ = pktline::split_sideband(payload);
                    let _ = pktline::err_message(payload);
                    let _ = packet.line();
                }
                packets.push(packet);
                at = end;
            }
            Ok(None) => {
                assert_eq!(reader.rest(), &data[at..]);
                break;
            }
            Err(_) => break,
        }
    }

    // Reading in two chunks (as a server does when a body arrives split) gives the
    // same packets up to the split, and the rest on resumption.
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut resumed = Vec::new();
    let mut first = PktReader::new(&data[..split]);
    while let Ok(Some(packet)) = first.next_packet() {
        resumed.push(packet);
    }
    let mut second = PktReader::new(&data[first.position()..]);
    while let Ok(Some(packet)) = second.next_packet() {
        resumed.push(packet);
    }
    assert_eq!(
        resumed, packets,
        "reading in two chunks split at {split} differs"
    );

    let band = Band::from_byte(data.first().map_or(1, |b| b % 3 + 1)).expect("band 1..=3");
    let mut out = Vec::new();
    pktline::write_sideband(&mut out, band, data).expect("writing to a Vec");
    let mut joined = Vec::new();
    for packet in PktReader::new(&out) {
        let payload = packet
            .expect("side-band output decodes")
            .data()
            .expect("data packet");
        let (got, bytes) = pktline::split_sideband(payload).expect("valid side-band");
        assert_eq!(got, band);
        joined.extend_from_slice(bytes);
    }
    assert_eq!(joined, data);
});

fn check_reencodes(packet: Packet<'_>, raw: &[u8]) {
    let mut out = Vec::new();
    match packet {
        Packet::Data(payload) => pktline::write_data(&mut out, payload).expect("fits"),
        Packet::Flush => pktline::write_flush(&mut out).expect("vec"),
        Packet::Delim => pktline::write_delim(&mut out).expect("vec"),
        Packet::ResponseEnd => pktline::write_response_end(&mut out).expect("vec"),
    }
    assert_eq!(out.len(), raw.len());
    assert!(out[..4].eq_ignore_ascii_case(&raw[..4]), "header differs");
    assert_eq!(out[4..], raw[4..]);
}
