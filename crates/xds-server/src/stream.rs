//! Drives one ADS stream: the first request names the node, then requests, debounced
//! snapshot changes and shutdown are handled one at a time by the protocol's [`Session`].
//!
//! One task per stream owns all of its state, so no locks are needed beyond publishing a copy
//! to [`crate::SyncStatus`] after each step.

use std::collections::HashSet;
use std::sync::Arc;

use bowline_xds::pb::envoy::config::core::v3::Node;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tonic::{Status, Streaming};

use crate::acks::Acks;
use crate::status::Protocol;
use crate::{Generator, Previous, Resources, Shared};

/// Responses queued per stream before the stream task waits for the proxy to read.
pub(crate) const RESPONSE_BUFFER: usize = 16;

/// One proxy's resources as generated from one snapshot.
pub(crate) struct View {
    pub(crate) generation: u64,
    pub(crate) resources: Resources,
}

/// The protocol half of a stream (SotW or delta): turns requests and new views into
/// responses, and keeps the per-type ACK state.
pub(crate) trait Session: Send + 'static {
    type Request: prost::Message + Default + Send + 'static;
    type Response: prost::Message + Send + 'static;
    const PROTOCOL: Protocol;

    fn node(request: &Self::Request) -> Option<&Node>;
    /// The nonce of the response a request answers (empty when it answers none).
    fn reply_nonce(request: &Self::Request) -> &str;
    /// The nonce a response carries.
    fn response_nonce(response: &Self::Response) -> &str;
    fn new(node_id: String, view: &View) -> Self;
    /// Handles one request; an error ends the stream with that status.
    fn on_request(
        &mut self,
        request: Self::Request,
        view: &View,
    ) -> Result<Vec<Self::Response>, Status>;
    /// The proxy's resources changed from `previous` to `next`: what to push, in push order.
    fn on_update(&mut self, previous: &View, next: &View) -> Vec<Self::Response>;
    fn acks(&self) -> &Acks;
}

type Responses<S> = mpsc::Sender<Result<<S as Session>::Response, Status>>;

/// Runs one stream until the proxy leaves, a request is refused, or the server stops.
pub(crate) async fn drive<G: Generator, S: Session>(
    shared: Arc<Shared<G>>,
    mut requests: Streaming<S::Request>,
    responses: Responses<S>,
    mut stop: watch::Receiver<bool>,
) {
    let first = tokio::select! {
        message = requests.message() => message,
        _ = stop.wait_for(|stopped| *stopped) => return,
    };
    let first = match first {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(status) => {
            tracing::debug!(%status, protocol = %S::PROTOCOL, "stream failed before its first request");
            return;
        }
    };
    let Some(node) = S::node(&first).cloned() else {
        let refusal =
            Status::invalid_argument("the first request on an ADS stream must carry the node");
        let _ = responses.send(Err(refusal)).await;
        return;
    };

    let mut snapshots = shared.snapshots.clone();
    // Response bytes sent and not yet answered (see `ServerOptions::max_bytes_in_flight`).
    let mut flight: Option<Flight> = None;
    // Clone the Arc so the watch is not borrowed (blocking the publisher) while generating.
    let snapshot = snapshots.borrow_and_update().clone();
    let Some(mut view) = evaluate(&shared, snapshot, &node, None).await else {
        return;
    };
    let registration = shared.status.register(&node.id, S::PROTOCOL);
    tracing::info!(node = node.id, protocol = %S::PROTOCOL, generation = view.generation, "proxy connected");

    let mut session = S::new(node.id.clone(), &view);
    let mut applied = None;
    let mut event = Event::Request(first);
    let mut debounce_until: Option<Instant> = None;
    let mut watching = true;
    // Responses made and not yet sent: a stream has one batch in flight at a time.
    let mut unsent: Vec<S::Response> = Vec::new();
    let ended_because = loop {
        if let (Event::Request(request), Some(booked)) = (&event, flight.as_mut()) {
            booked.answered(S::reply_nonce(request));
        }
        let out = match event {
            Event::Request(request) => match session.on_request(request, &view) {
                Ok(out) => out,
                Err(status) => {
                    tracing::warn!(node = node.id, %status, "refusing malformed request");
                    let _ = responses.send(Err(status)).await;
                    break "malformed request";
                }
            },
            Event::SnapshotSettled => {
                // Mark the snapshot seen even when it is not evaluated, or `changed()` would
                // fire again at once.
                let snapshot = snapshots.borrow_and_update().clone();
                let previous = Previous {
                    generation: view.generation,
                    resources: &view.resources,
                };
                if G::generation(&snapshot) == view.generation {
                    Vec::new()
                } else if !shared.generator.concerns(&snapshot, &node, &previous) {
                    // The same resources at the new generation: nothing to send, and the
                    // proxy counts as running it once it has ACKed what it holds.
                    view.generation = G::generation(&snapshot);
                    Vec::new()
                } else {
                    let Some(next_view) = evaluate(&shared, snapshot, &node, Some(&view)).await
                    else {
                        break "generation failed";
                    };
                    let out = session.on_update(&view, &next_view);
                    view = next_view;
                    out
                }
            }
            Event::Nothing => Vec::new(),
        };
        unsent.extend(out);
        if flight.as_ref().is_some_and(Flight::is_answered) {
            flight = None;
        }
        // What a stream sends stays booked until the proxy answers it (or the deadline
        // passes), so the budget bounds what is encoded and unanswered across all streams.
        // A stream holding bytes never waits for room: it sends more only if the budget has
        // room now, else once its proxy answered. So no stream waits on another (measured
        // before: releasing older bytes to book each request's output let 100 sidecars of a
        // 10,000-service mesh hold 1.8 GB of encoded responses at once).
        if !unsent.is_empty() {
            let bytes: usize = unsent.iter().map(prost::Message::encoded_len).sum();
            let nonces: HashSet<String> = unsent
                .iter()
                .map(|r| S::response_nonce(r).to_string())
                .collect();
            let sendable = match flight.as_mut() {
                // Room left in the budget: pipelined at once (a proxy may ask for listeners
                // before it answers the clusters).
                Some(booked) => booked.extend(&shared, bytes, nonces),
                None => match Flight::book(&shared, bytes, nonces, &mut stop).await {
                    Some(booked) => {
                        flight = Some(booked);
                        true
                    }
                    None => break "server stopping",
                },
            };
            if sendable {
                let batch = std::mem::take(&mut unsent);
                if !send_all::<S>(&responses, batch, &mut stop).await {
                    break "proxy went away or server stopping";
                }
            }
        }
        // Everything sent so far is ACKed: the proxy runs the generation evaluated last.
        if unsent.is_empty() && session.acks().all_acked() {
            applied = Some(view.generation);
        }
        registration.publish(session.acks().to_status(), applied);

        let flight_deadline = flight.as_ref().map(|f| f.deadline);
        event = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break "server stopping",
            _ = responses.closed() => break "proxy went away",
            message = requests.message() => match message {
                Ok(Some(request)) => Event::Request(request),
                Ok(None) => break "proxy closed the stream",
                Err(status) => {
                    tracing::debug!(node = node.id, %status, "request stream failed");
                    break "request stream failed";
                }
            },
            changed = snapshots.changed(), if watching && debounce_until.is_none() => {
                match changed {
                    Ok(()) => debounce_until = Some(Instant::now() + shared.options.debounce),
                    // The control plane dropped its sender: keep serving the last snapshot.
                    Err(_) => watching = false,
                }
                Event::Nothing
            },
            _ = sleep_until(debounce_until), if debounce_until.is_some() => {
                debounce_until = None;
                Event::SnapshotSettled
            },
            _ = sleep_until(flight_deadline), if flight_deadline.is_some() => {
                tracing::debug!(node = node.id, "proxy slow to answer: no longer counted in flight");
                flight = None;
                Event::Nothing
            },
        };
    };
    tracing::info!(node = node.id, protocol = %S::PROTOCOL, reason = ended_because, "proxy disconnected");
}

/// Bytes a stream sent that its proxy has not answered yet, booked against the server's
/// budget (`ServerOptions::max_bytes_in_flight`); released by the answers or the deadline.
struct Flight {
    permit: OwnedSemaphorePermit,
    deadline: Instant,
    /// Nonces of the batch's responses the proxy has not answered yet.
    waiting: HashSet<String>,
}

impl Flight {
    /// Waits until `bytes` fit in the budget (a response larger than the whole budget waits
    /// for all of it); `None` when the server stops first.
    async fn book<G: Generator>(
        shared: &Arc<Shared<G>>,
        bytes: usize,
        waiting: HashSet<String>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Flight> {
        let kib = kib(bytes).min(shared.options.budget_kib());
        tokio::select! {
            permit = shared.in_flight.clone().acquire_many_owned(kib) => Some(Flight {
                permit: permit.ok()?,
                deadline: Instant::now() + shared.options.push_timeout,
                waiting,
            }),
            _ = stop.wait_for(|stopped| *stopped) => None,
        }
    }
}

/// What woke the stream task.
enum Event<R> {
    Request(R),
    /// The debounce after a snapshot change ran out: time to regenerate.
    SnapshotSettled,
    Nothing,
}

/// Generates the proxy's resources from `snapshot` on a blocking thread, so connection
/// handshakes, keepalives and other streams' ACKs are served meanwhile. `None` (logged) if
/// the generator panicked.
async fn evaluate<G: Generator>(
    shared: &Arc<Shared<G>>,
    snapshot: Arc<G::Snapshot>,
    node: &Node,
    previous: Option<&View>,
) -> Option<View> {
    // Bounded: generation is CPU work, and a burst of streams must not queue a blocking
    // thread each.
    let _generating = shared.generating.clone().acquire_owned().await.ok()?;
    let shared = shared.clone();
    let node_for_task = node.clone();
    let previous = previous.map(|v| (v.generation, v.resources.clone()));
    let generated = tokio::task::spawn_blocking(move || {
        let previous = previous.as_ref().map(|(generation, resources)| Previous {
            generation: *generation,
            resources,
        });
        View {
            generation: G::generation(&snapshot),
            resources: shared
                .generator
                .generate(&snapshot, &node_for_task, previous.as_ref()),
        }
    })
    .await;
    match generated {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::error!(node = node.id, "generating this proxy's config failed: {e}");
            None
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

impl Flight {
    /// Books `bytes` more if the budget has room for them now; false (nothing booked) if not.
    fn extend<G: Generator>(
        &mut self,
        shared: &Arc<Shared<G>>,
        bytes: usize,
        nonces: HashSet<String>,
    ) -> bool {
        match shared.in_flight.clone().try_acquire_many_owned(kib(bytes)) {
            Ok(more) => {
                self.permit.merge(more);
                self.waiting.extend(nonces);
                true
            }
            Err(_) => false,
        }
    }

    /// The proxy answered the response carrying `nonce` (ACK or NACK).
    fn answered(&mut self, nonce: &str) {
        self.waiting.remove(nonce);
    }

    fn is_answered(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// `bytes` in the budget's unit (KiB, at least one).
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// Sends in order; false when the proxy is gone or the server stops while the proxy is slow.
async fn send_all<S: Session>(
    responses: &Responses<S>,
    out: Vec<S::Response>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    for response in out {
        tokio::select! {
            sent = responses.send(Ok(response)) => if sent.is_err() { return false },
            _ = stop.wait_for(|stopped| *stopped) => return false,
        }
    }
    true
}
