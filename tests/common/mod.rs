//! What the HTTP integration tests share: a manager on its own thread serving HTTP on
//! an ephemeral port of 127.0.0.1 until the test drops it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tern::{DynHandler, Manager, Opt};

pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// Starts a manager thread with `opts` set and an HTTP listener whose handler
/// `make` builds on that thread (handlers hold `Rc`s, so they cannot be sent).
pub fn serve(opts: &[(Opt, i64)], make: impl FnOnce(&Manager) -> DynHandler + Send + 'static) -> Server {
    let (port_tx, port_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let opts = opts.to_vec();
    let thread = std::thread::spawn(move || {
        let m = Manager::new().unwrap();
        for (o, v) in opts {
            m.set_option(o, v).unwrap();
        }
        let lid = m.http_listen("http://127.0.0.1:0", make(&m), 0).unwrap();
        port_tx.send(m.local_addr(lid).unwrap().port()).unwrap();
        while !stop2.load(Ordering::SeqCst) {
            m.poll(Some(Duration::from_millis(5))).unwrap();
        }
    });
    let port = port_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    Server { port, stop, thread: Some(thread) }
}
