//! SubscribeToShard's response body: an `initial-response` event, then one
//! `SubscribeToShardEvent` per batch the subscription yields, then the end
//! (or one exception message if the subscription fails after the start).
//!
//! hyper pulls the body as the connection can take it, so the subscription
//! reads the next batch only when the previous one has been handed to the
//! socket: a slow client holds back only its own subscription.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use riffle_kinesis::{Codec, Subscription};
use tokio::sync::watch;

use crate::request::ResponseBody;
use crate::{errors, eventstream};

/// The event-stream body of `subscription`, its payloads in `codec` (the
/// request's), ending early when `stopping` turns true (the server shuts
/// down).
pub(crate) fn body(
    subscription: Subscription,
    codec: Codec,
    stopping: watch::Receiver<bool>,
) -> ResponseBody {
    let first = stream::once(async move { eventstream::initial_response(codec) });
    let events = stream::unfold(Some((subscription, stopping)), move |state| async move {
        let (mut subscription, mut stopping) = state?;
        let next = tokio::select! {
            next = subscription.next_event() => next,
            _ = stopping.wait_for(|stop| *stop) => None,
        };
        match next?.and_then(|payload| codec.encode_json(payload)) {
            Ok(payload) => {
                let message = eventstream::event("SubscribeToShardEvent", codec, &payload);
                Some((message, Some((subscription, stopping))))
            }
            Err(err) => Some((errors::exception_event(&err, codec), None)),
        }
    });
    let frames = first
        .chain(events)
        .map(|message: Bytes| Ok::<_, std::io::Error>(Frame::data(message)));
    StreamBody::new(frames).boxed_unsync()
}
