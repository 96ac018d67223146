//! Request bodies read to their end even when nobody wanted them.
//!
//! A request refused before its message is read (the write rate, the bound on requests in
//! flight, a missing or bad token) leaves the client's DATA frame unread, and once the answer
//! is sent the server resets the stream. Under a sustained refusal (a client retrying at its
//! write rate; everyone behind the gateway's shared connection) h2 (0.4.20 and 0.4.21) ends up
//! charging some of those unread frames to the connection's small-DATA-frame budget for good:
//! about 37,000 refusals on, it closes the connection (GOAWAY `ENHANCE_YOUR_CALM`,
//! `too_many_data_frames`) with every call on it. Seen in the demo at Hubei scale and in
//! `limits::callers_retrying_at_their_write_rate_all_get_through`. So a body dropped before
//! its end is read to its end by a task of its own, within [`DRAIN_BYTES`] and
//! [`DRAIN_TIME`]: its frames are consumed, and its stream ends as the client sent it.

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::body::Body;

/// What of an unwanted body is read (a unary call's message fits many times over)...
pub const DRAIN_BYTES: usize = 256 * 1024;
/// ...and for how long at most, so that a client that never ends its stream holds nothing.
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

/// `body`, read to its end in the background if it is dropped before.
pub fn drained_when_dropped(body: Body) -> Body {
    Body::new(DrainOnDrop(Some(body)))
}

struct DrainOnDrop(Option<Body>);

impl HttpBody for DrainOnDrop {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        match self.0.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(body) = self.0.take() else { return };
        // A message read to its end (every answered unary call) needs nothing more.
        if body.is_end_stream() {
            return;
        }
        // Outside a runtime (a test dropping a request) there is no connection to protect.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let unread = http_body_util::Limited::new(body, DRAIN_BYTES);
                let _ = tokio::time::timeout(DRAIN_TIME, http_body_util::BodyExt::collect(unread))
                    .await;
            });
        }
    }
}
