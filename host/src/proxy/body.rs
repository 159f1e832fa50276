//! The request body: kept in memory up to a cap so that a 401 can be answered by a
//! replay, streamed beyond it so that an upload of any size still goes through.
//!
//! A body whose `Content-Length` is over the cap is streamed from the first byte. One of
//! unknown length is read until it ends or passes the cap; in the latter case what was
//! read goes first and the rest follows as it arrives. No body ever costs more than the
//! cap in memory.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// How much of a request body is kept for a replay by default.
pub(super) const DEFAULT_REPLAY_CAP: usize = 8 * 1024 * 1024;

/// A request body ready to go upstream.
pub(crate) enum RequestBody {
    /// All of it, in memory: can be sent again.
    Replayable(Bytes),
    /// Too large to keep: sent once.
    Stream(Prefixed),
}

/// Reads `body` (which declares `declared` bytes, if it does) up to `cap` bytes.
pub(crate) async fn read(
    mut body: Incoming,
    declared: Option<u64>,
    cap: usize,
) -> Result<RequestBody, hyper::Error> {
    if declared.is_some_and(|len| len > cap as u64) {
        return Ok(RequestBody::Stream(Prefixed::new(VecDeque::new(), body)));
    }
    let mut chunks: VecDeque<Bytes> = VecDeque::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        // Trailers of a request body are not forwarded (hardly any server reads them).
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        total += data.len();
        chunks.push_back(data);
        if total > cap {
            return Ok(RequestBody::Stream(Prefixed::new(chunks, body)));
        }
    }
    Ok(RequestBody::Replayable(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop_front().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(total);
            chunks.iter().for_each(|c| all.extend_from_slice(c));
            all.freeze()
        }
    }))
}

/// What was read of a body, then the rest of it as it arrives.
pub(crate) struct Prefixed {
    read: VecDeque<Bytes>,
    rest: Incoming,
}

impl Prefixed {
    fn new(read: VecDeque<Bytes>, rest: Incoming) -> Prefixed {
        Prefixed { read, rest }
    }
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(chunk) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self.read.iter().map(|c| c.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + read);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + read);
        }
        hint
    }
}
