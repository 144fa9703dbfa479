//! Host name resolution on a helper thread, so `getaddrinfo` never blocks the loop.
//! The thread starts on the first name to resolve and is joined when the manager is
//! freed; results come back through a channel and wake the loop.

use crossbeam_channel::{unbounded, Receiver, Sender};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A finished lookup of `host:port` for connection `id`.
pub struct Resolved {
    pub id: u64,
    pub host: String,
    pub port: u16,
    pub result: io::Result<Vec<SocketAddr>>,
}

struct Request {
    id: u64,
    host: String,
    port: u16,
}

/// Owned by the manager; one helper thread at most.
pub struct Resolver {
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    done_tx: Sender<Resolved>,
    done_rx: Receiver<Resolved>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Resolver {
    /// `wake` is called after each result is queued, to interrupt the loop's poll.
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Resolver {
        let (done_tx, done_rx) = unbounded();
        Resolver { requests: None, thread: None, done_tx, done_rx, wake }
    }

    /// Queues a lookup; the answer arrives through [`Resolver::try_recv`].
    pub fn resolve(&mut self, id: u64, host: String, port: u16) -> io::Result<()> {
        if self.requests.is_none() {
            self.start()?;
        }
        let tx = self.requests.as_ref().expect("started above");
        tx.send(Request { id, host, port }).map_err(|_| io::Error::other("resolver thread gone"))
    }

    pub fn try_recv(&self) -> Option<Resolved> {
        self.done_rx.try_recv().ok()
    }

    fn start(&mut self) -> io::Result<()> {
        let (tx, rx) = unbounded::<Request>();
        let done = self.done_tx.clone();
        let wake = self.wake.clone();
        let thread = std::thread::Builder::new().name("tern-resolver".into()).spawn(move || {
            for req in rx {
                let result = (req.host.as_str(), req.port).to_socket_addrs().map(|it| {
                    // Prefer IPv4 first: most local services listen on 127.0.0.1 only.
                    let mut v: Vec<SocketAddr> = it.collect();
                    v.sort_by_key(|a| a.is_ipv6());
                    v
                });
                if done.send(Resolved { id: req.id, host: req.host, port: req.port, result }).is_err() {
                    return;
                }
                wake();
            }
        })?;
        self.requests = Some(tx);
        self.thread = Some(thread);
        Ok(())
    }

    /// Stops the helper thread, waiting for a lookup in progress to finish.
    pub fn shutdown(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        while self.done_rx.try_recv().is_ok() {}
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.shutdown();
    }
}
