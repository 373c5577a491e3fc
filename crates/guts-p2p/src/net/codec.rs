//! The request-response codec of `/guts/sync/1`: one [`wire`] frame per request and one
//! per response, read header first so that an oversized frame is refused before it is
//! buffered.
//!
//! Who is to blame is kept apart: a response frame from the peer that does not decode
//! is an `InvalidData` error (request-response reports it with the peer, and the swarm
//! task reports the peer as misbehaving); a message of ours that cannot be encoded is
//! `InvalidInput` (our bug, not the peer's). A request frame that does not decode is
//! not an error but a value, [`RequestFrame::Invalid`]: request-response drops inbound
//! read errors without saying who sent them (libp2p-request-response 0.30 only logs
//! them at debug), and the peer must be named to be penalised.

use std::io;

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::wire::{self, HEADER_LEN, Request, Response, WireError};

/// The one protocol name of the sync protocol. The wire version byte inside each frame
/// lets the format change; a new protocol name would mean a new conversation shape.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/guts/sync/1");

/// A request as it travels through request-response: decoded, or what was wrong with
/// the peer's frame. Only `Decoded` is ever sent.
#[derive(Debug)]
pub(crate) enum RequestFrame {
    Decoded(Request),
    Invalid(WireError),
}

/// Stateless: every stream carries exactly one frame each way.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SyncCodec;

/// A peer's bytes that do not make a frame of the expected family.
fn invalid_data(error: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// A message of ours that the encoder refuses.
fn invalid_input(error: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error)
}

/// Reads exactly one frame: the header, then as many bytes as [`wire::frame_len`] says.
/// The outer error is the stream's; the inner one a header that is refused (another
/// version, a body over the cap), in which case nothing more is read.
///
/// The body is read through `take` into a growing buffer rather than a buffer sized from
/// the header, so a peer that declares 8 MiB and sends nothing costs nothing: memory
/// follows the bytes that actually arrive.
async fn read_checked_frame<T>(io: &mut T) -> io::Result<Result<Vec<u8>, WireError>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut frame = vec![0u8; HEADER_LEN];
    io.read_exact(&mut frame).await?;
    let len = match wire::frame_len(&frame) {
        Ok(len) => len,
        Err(refused) => return Ok(Err(refused)),
    };
    let body_len = len.saturating_sub(HEADER_LEN);
    let limit = u64::try_from(body_len).unwrap_or(u64::MAX);
    io.take(limit).read_to_end(&mut frame).await?;
    if frame.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            WireError::Truncated {
                needed: len,
                available: frame.len(),
            },
        ));
    }
    Ok(Ok(frame))
}

/// [`read_checked_frame`] with a refused header as an `InvalidData` error.
pub(crate) async fn read_frame<T>(io: &mut T) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    read_checked_frame(io).await?.map_err(invalid_data)
}

async fn write_frame<T>(io: &mut T, frame: Vec<u8>) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    io.write_all(&frame).await?;
    io.flush().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = RequestFrame;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RequestFrame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = match read_checked_frame(io).await? {
            Ok(frame) => frame,
            Err(refused) => return Ok(RequestFrame::Invalid(refused)),
        };
        Ok(match Request::decode(&frame) {
            Ok(request) => RequestFrame::Decoded(request),
            Err(e) => RequestFrame::Invalid(e),
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io).await?;
        Response::decode(&frame).map_err(invalid_data)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: RequestFrame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match request {
            RequestFrame::Decoded(request) => {
                write_frame(io, request.encode().map_err(invalid_input)?).await
            }
            RequestFrame::Invalid(e) => Err(invalid_input(e)),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, response.encode().map_err(invalid_input)?).await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::*;
    use crate::wire::{ErrorCode, MAX_FRAME_BYTES, WIRE_VERSION};

    #[test]
    fn frames_round_trip_through_the_codec() {
        block_on(async {
            let mut codec = SyncCodec;
            let request = Request::Repos { after: None };
            let mut buf = Vec::new();
            codec
                .write_request(
                    &SYNC_PROTOCOL,
                    &mut buf,
                    RequestFrame::Decoded(request.clone()),
                )
                .await
                .unwrap();
            let read = codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(buf))
                .await
                .unwrap();
            assert!(matches!(read, RequestFrame::Decoded(r) if r == request));

            let response = Response::Error {
                code: ErrorCode::Busy,
                message: "later".into(),
            };
            let mut buf = Vec::new();
            codec
                .write_response(&SYNC_PROTOCOL, &mut buf, response.clone())
                .await
                .unwrap();
            let read = codec
                .read_response(&SYNC_PROTOCOL, &mut Cursor::new(buf))
                .await
                .unwrap();
            assert_eq!(read, response);
        });
    }

    #[test]
    fn an_oversized_header_is_refused_before_the_body() {
        block_on(async {
            // The header declares a body over the cap; no body follows at all.
            let mut header = vec![WIRE_VERSION, 0x02, 0x01];
            header.extend_from_slice(&u32::try_from(MAX_FRAME_BYTES).unwrap().to_be_bytes());
            let read = SyncCodec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(header.clone()))
                .await
                .unwrap();
            assert!(
                matches!(read, RequestFrame::Invalid(WireError::FrameTooLarge { .. })),
                "{read:?}"
            );
            let err = read_frame(&mut Cursor::new(header)).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }

    #[test]
    fn garbage_truncation_and_wrong_family_are_typed_errors() {
        block_on(async {
            let mut codec = SyncCodec;
            let garbage = vec![0xffu8; 64];
            let read = codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(garbage))
                .await
                .unwrap();
            assert!(
                matches!(
                    read,
                    RequestFrame::Invalid(WireError::UnsupportedVersion(0xff))
                ),
                "{read:?}"
            );
            // A whole frame of the wrong family: read, then refused by the decoder.
            let frame = Response::Heads { repos: vec![] }.encode().unwrap();
            let read = codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(frame))
                .await
                .unwrap();
            assert!(
                matches!(read, RequestFrame::Invalid(WireError::UnknownTag { .. })),
                "{read:?}"
            );

            let mut frame = Request::Heads { repos: vec![] }.encode().unwrap();
            frame.pop();
            let err = codec
                .read_request(&SYNC_PROTOCOL, &mut Cursor::new(frame))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

            // A request frame where a response is expected: an unknown tag.
            let frame = Request::Repos { after: None }.encode().unwrap();
            let err = codec
                .read_response(&SYNC_PROTOCOL, &mut Cursor::new(frame))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }
}
