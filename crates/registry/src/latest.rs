//! A background thread that works on the latest of what it is given: each submission
//! replaces any that has not started, so a burst of changes costs one run, not one per
//! change. Persisting the store and analysing the config both work this way — each reads
//! the whole mesh, and neither may hold up the change that caused it.
//!
//! Submissions get tickets in order; [`Latest::wait`] lets a caller that must see its own
//! change done (`bowline apply`, a test) wait for it, bounded. Dropping the worker runs what
//! is still queued, then joins the thread.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Latest<T: Send + 'static> {
    shared: Arc<(Mutex<Queue<T>>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

struct Queue<T> {
    pending: Option<(u64, T)>,
    /// The last ticket handed out, and the last one whose run (or a later one's) finished.
    queued: u64,
    done: u64,
    shutdown: bool,
}

impl<T: Send + 'static> Latest<T> {
    /// Starts the thread `name`, running `work` on each latest submission. `work` returns
    /// how long to rest after its run is marked done (submissions meanwhile coalesce; a
    /// shutdown ends the rest).
    pub fn spawn(name: &str, mut work: impl FnMut(T) -> Duration + Send + 'static) -> Latest<T> {
        let shared = Arc::new((
            Mutex::new(Queue {
                pending: None,
                queued: 0,
                done: 0,
                shutdown: false,
            }),
            Condvar::new(),
        ));
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let (lock, wake) = &*worker;
                loop {
                    let (ticket, item) = {
                        let mut queue = lock.lock().unwrap_or_else(|e| e.into_inner());
                        loop {
                            if let Some(next) = queue.pending.take() {
                                break next;
                            }
                            if queue.shutdown {
                                return;
                            }
                            queue = wake.wait(queue).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    let rest = work(item);
                    release_freed_memory();
                    let mut queue = lock.lock().unwrap_or_else(|e| e.into_inner());
                    queue.done = ticket;
                    wake.notify_all();
                    if !rest.is_zero() {
                        let _ = wake
                            .wait_timeout_while(queue, rest, |q| !q.shutdown)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                }
            })
            .expect("spawn a background worker");
        Latest {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues `item` in place of anything not yet started; returns its ticket.
    pub fn submit(&self, item: T) -> u64 {
        let (lock, wake) = &*self.shared;
        let mut queue = lock.lock().unwrap_or_else(|e| e.into_inner());
        queue.queued += 1;
        let ticket = queue.queued;
        queue.pending = Some((ticket, item));
        wake.notify_all();
        ticket
    }

    /// The ticket of the latest submission (0 before any).
    pub fn queued(&self) -> u64 {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).queued
    }

    /// Waits (at most `timeout`) until the run of `ticket`, or of a later one, finished.
    /// Returns whether it did.
    pub fn wait(&self, ticket: u64, timeout: Duration) -> bool {
        let (lock, wake) = &*self.shared;
        let queue = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (queue, _) = wake
            .wait_timeout_while(queue, timeout, |q| q.done < ticket)
            .unwrap_or_else(|e| e.into_inner());
        queue.done >= ticket
    }
}

impl<T: Send + 'static> Drop for Latest<T> {
    fn drop(&mut self) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).shutdown = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Hands the memory a run freed back to the system. Both workers allocate in proportion to
/// the mesh for a moment (the analysis' indexes, the persister's encoding) on their own
/// thread, and glibc keeps what a thread freed in that thread's arena, where the threads
/// serving proxies never reuse it: at 10,000 services the control plane's RSS otherwise
/// keeps every such peak.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_coalesces_and_every_ticket_is_waited_for() {
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let worker = Latest::spawn("test-latest", move |n: u32| {
            if n == 0 {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap(); // hold the first run until the burst is queued
            }
            log.lock().unwrap().push(n);
            Duration::ZERO
        });
        let first = worker.submit(0);
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // Submitted while 0 runs: only the last of them runs next.
        let tickets: Vec<u64> = (1..=5).map(|n| worker.submit(n)).collect();
        assert!(!worker.wait(first, Duration::ZERO), "still running");
        gate_tx.send(()).unwrap();
        assert!(worker.wait(*tickets.last().unwrap(), Duration::from_secs(10)));
        for t in tickets {
            assert!(
                worker.wait(t, Duration::ZERO),
                "an earlier ticket is done too"
            );
        }
        assert_eq!(*seen.lock().unwrap(), [0, 5]);
    }

    #[test]
    fn dropping_runs_what_is_queued() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let worker = Latest::spawn("test-latest", move |n: u32| {
            log.lock().unwrap().push(n);
            Duration::ZERO
        });
        worker.submit(7);
        drop(worker);
        assert_eq!(seen.lock().unwrap().last(), Some(&7));
    }
}
