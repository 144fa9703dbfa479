//! Opening connections: listening on an address, connecting to an address or a name
//! (resolved on a helper thread, then tried address by address).

use super::conn::{Conn, Phase, Sock};
use super::event::Handler;
use super::Reactor;
use crate::error::{Error, Failure, Result};
use crate::net::url::Target;
use crate::proto::{ConnId, Stack};
use crate::transport::{Security, Transport};
use mio::{Interest, Token};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

impl<P: Stack> Reactor<P> {
    /// Listens on `addr`; accepted connections speak what `proto.accepts()` says and
    /// inherit `handler` and `user`. OPEN is delivered at the next poll.
    pub fn listen_addr(&self, addr: SocketAddr, proto: P, handler: Rc<dyn Handler<P>>, user: usize) -> Result<ConnId> {
        self.listen_secured(addr, proto, Security::Plain, handler, user)
    }

    /// `listen_addr` whose accepted streams are wrapped as `sec` says (TLS).
    pub fn listen_secured(&self, addr: SocketAddr, proto: P, sec: Security, handler: Rc<dyn Handler<P>>, user: usize) -> Result<ConnId> {
        self.check_may_open()?;
        let mut listener = mio::net::TcpListener::bind(addr).map_err(|e| {
            crate::tern_log!(crate::log::Level::Error, "listen on {addr}: {e}");
            Error::from(e)
        })?;
        if let Err(e) = crate::net::socket::raise_backlog(&listener) {
            crate::tern_log!(crate::log::Level::Warn, "listen backlog on {addr}: {e}");
        }
        let mut inner = self.inner.borrow_mut();
        let id = inner.alloc_id();
        inner.poll.registry().register(&mut listener, Token(id as usize), Interest::READABLE)?;
        inner.conns.insert(id, Conn::new(Sock::Listener(listener), Phase::Open, proto, handler, user));
        if !matches!(sec, Security::Plain) {
            inner.security.insert(id, sec);
        }
        inner.schedule(id, 0);
        Ok(id)
    }

    /// Connects to `target` speaking `proto`. Names are resolved on a helper thread;
    /// the attempt is bounded by CONNECT_TIMEOUT_MS. Events: OPEN, then CONNECT, or
    /// ERROR and CLOSE. What is queued before CONNECT is sent after it.
    pub fn connect_target(&self, target: Target, proto: P, handler: Rc<dyn Handler<P>>, user: usize) -> Result<ConnId> {
        self.connect_secured(target, proto, Security::Plain, handler, user)
    }

    /// `connect_target` over a stream wrapped as `sec` says (TLS): CONNECT comes
    /// once the handshake is done, within TLS_HANDSHAKE_TIMEOUT_MS of the TCP connect.
    pub fn connect_secured(&self, target: Target, proto: P, sec: Security, handler: Rc<dyn Handler<P>>, user: usize) -> Result<ConnId> {
        self.check_may_open()?;
        let id = {
            let mut inner = self.inner.borrow_mut();
            let id = inner.alloc_id();
            inner.conns.insert(id, Conn::new(Sock::None, Phase::Connecting, proto, handler, user));
            if !matches!(sec, Security::Plain) {
                inner.security.insert(id, sec);
            }
            let deadline = Instant::now() + Duration::from_millis(inner.opts.connect_timeout_ms);
            inner.set_conn_timer(id, Some(deadline));
            let addrs = match &target {
                Target::Addr(a) => vec![*a],
                Target::Name(..) => Vec::new(),
            };
            inner.connecting.insert(id, addrs);
            inner.schedule(id, 0);
            id
        };
        match target {
            Target::Addr(_) => self.try_next_addr(id, None),
            Target::Name(host, port) => {
                let r = self.inner.borrow_mut().resolver.resolve(id, host, port);
                if let Err(e) = r {
                    self.fail(id, Failure::io("resolver", &e));
                }
            }
        }
        Ok(id)
    }

    /// Starts a non-blocking connect to the next candidate address; fails the
    /// connection when none is left.
    pub(super) fn try_next_addr(&self, id: ConnId, mut last: Option<io::Error>) {
        loop {
            let next = self.inner.borrow_mut().connecting.get_mut(&id).map(Vec::pop);
            let addr = match next {
                Some(Some(a)) => a,
                Some(None) => {
                    let e = last.map_or_else(|| Failure::new(Error::Name, "no address to connect to"), |e| Failure::io("connect", &e));
                    return self.fail(id, e);
                }
                None => return,
            };
            match mio::net::TcpStream::connect(addr) {
                Ok(mut s) => {
                    let mut guard = self.inner.borrow_mut();
                    let inner = &mut *guard;
                    match inner.poll.registry().register(&mut s, Token(id as usize), Interest::READABLE | Interest::WRITABLE) {
                        Ok(()) => {
                            let sec = inner.security.get(&id).cloned().unwrap_or_default();
                            let handshake = Duration::from_millis(inner.opts.tls_handshake_timeout_ms);
                            match Transport::new(s, &sec, handshake) {
                                Ok(t) => {
                                    if let Some(c) = inner.conns.get_mut(&id) {
                                        c.sock = Sock::Stream(t);
                                    }
                                    return;
                                }
                                Err(e) => last = Some(e),
                            }
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(e) => last = Some(e),
            }
        }
    }

    pub(super) fn drain_resolver(&self) {
        loop {
            let r = self.inner.borrow().resolver.try_recv();
            let Some(r) = r else { return };
            match r.result {
                Ok(addrs) if !addrs.is_empty() => {
                    let waiting = {
                        let mut inner = self.inner.borrow_mut();
                        let connecting = inner.conns.get(&r.id).is_some_and(|c| c.phase == Phase::Connecting);
                        match inner.connecting.get_mut(&r.id) {
                            Some(list) if connecting => {
                                // Tried from the back: the resolver's preferred first.
                                *list = addrs.into_iter().rev().collect();
                                true
                            }
                            _ => false,
                        }
                    };
                    if waiting {
                        self.try_next_addr(r.id, None);
                    }
                }
                Ok(_) => self.fail(r.id, Failure::new(Error::Name, "name resolved to no address")),
                Err(e) => self.fail(r.id, Failure { code: Error::Name, ..Failure::io("resolve", &e) }),
            }
        }
    }
}
