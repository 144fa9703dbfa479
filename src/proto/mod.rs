//! The protocol interface: everything the reactor knows of a protocol, and everything
//! it lends one.
//!
//! A protocol is a state machine per connection (`Protocol`). The reactor calls it
//! when something happened (input arrived, the connection is established, the peer
//! sent EOF, its timer fired, a remote posted to it) and it answers with a `Step`: wait,
//! run again, deliver something to the handler, switch to another protocol. While it
//! runs it sees only a `Ctx`: the connection's receive buffer (plaintext) and send
//! queue, the buffer pool, the options, the per-manager state of its own kind, and a
//! set of effects it may request (flush, read again, close, fail). It never sees the
//! socket, the transport or the reactor.
//!
//! This module names no protocol. The list of protocols lives above the protocols
//! (`crate::stack`), and the reactor is generic over it, so nothing imports in a circle.

use crate::buf::pool::BufPool;
use crate::buf::recv_buf::RecvBuf;
use crate::buf::send_queue::SendQueue;
use crate::error::{Error, Failure};
use crate::options::Options;
use std::time::Instant;

/// Unique within a manager, never reused; 0 means none.
pub type ConnId = u64;

/// What should happen after a protocol handled something.
pub enum Step<D, U> {
    /// Nothing more until new input, output space or a timer.
    Wait,
    /// Call `on_input` again (state changed; more may be ready).
    Again,
    /// Deliver the receive buffer to the handler as raw bytes (`Event::Read`), and
    /// wait for the next input.
    Read,
    /// Deliver this to the handler (lent with `lend`, given back with `give_back`),
    /// then call `on_input` again.
    Deliver(D),
    /// Become another protocol, keeping the connection, its transport, the bytes
    /// received and the send queue.
    Upgrade(U),
}

impl<D, U> Step<D, U> {
    /// The same step for an outer protocol that wraps this one's deliveries and
    /// upgrades.
    pub fn map<D2, U2>(self, d: impl FnOnce(D) -> D2, u: impl FnOnce(U) -> U2) -> Step<D2, U2> {
        match self {
            Step::Wait => Step::Wait,
            Step::Again => Step::Again,
            Step::Read => Step::Read,
            Step::Deliver(x) => Step::Deliver(d(x)),
            Step::Upgrade(x) => Step::Upgrade(u(x)),
        }
    }
}

/// One connection's protocol state. Implemented by each protocol, and by the list of
/// all of them (`crate::stack::AnyProto`), which dispatches with one `match`.
pub trait Protocol: Sized + 'static {
    /// Per-manager state of this protocol (caches, registries, scratch space), owned
    /// by the reactor and lent to every call.
    type Shared: Default + 'static;
    /// The part of that state other threads may use (through a remote).
    type Remote: Send + Sync + 'static;
    /// A message for one connection (or, through `recipients`, for many), posted
    /// from another thread. Cloned once per recipient of a fan-out: keep it cheap to
    /// clone (shared buffers).
    type Posted: Send + Clone + 'static;
    /// What `on_input` asks to deliver.
    type Delivery;
    /// The buffers a delivery moves out of the connection while the handler runs.
    type Lent;
    /// What the handler sees, borrowed from the `Lent`.
    type Event<'a>;
    /// What this protocol may ask to become.
    type Upgrade;

    /// What a remote gets to keep of the shared state.
    fn remote_state(shared: &Self::Shared) -> Self::Remote;

    /// Bytes are in the receive buffer (or an earlier step asked to run again).
    fn on_input(&mut self, cx: &mut Ctx<'_, Self::Shared>) -> Step<Self::Delivery, Self::Upgrade>;

    /// An outgoing connection is established (the transport is ready).
    fn on_connected(&mut self, _cx: &mut Ctx<'_, Self::Shared>) -> Step<Self::Delivery, Self::Upgrade> {
        Step::Again
    }

    /// The peer sends nothing more; every complete input was handled before this.
    /// The protocol closes (gracefully or with an error) through `cx`.
    fn on_eof(&mut self, cx: &mut Ctx<'_, Self::Shared>) -> Step<Self::Delivery, Self::Upgrade>;

    /// The deadline from `deadline` passed (or an earlier one the reactor still had).
    fn on_timer(&mut self, cx: &mut Ctx<'_, Self::Shared>) -> Step<Self::Delivery, Self::Upgrade>;

    /// A message a remote posted for this connection.
    fn on_posted(&mut self, cx: &mut Ctx<'_, Self::Shared>, msg: Self::Posted) -> Step<Self::Delivery, Self::Upgrade>;

    /// For a message posted for many connections (a publish to a topic): the ids of
    /// the connections it is for, appended to `out`. Each gets `on_posted` with a
    /// clone of it; the steps they return are not followed (a fan-out delivers
    /// nothing to handlers).
    fn recipients(_shared: &Self::Shared, _msg: &Self::Posted, _out: &mut Vec<ConnId>) {}

    /// The connection ends, or switches away from this protocol: give back whatever
    /// was registered for it (tokens, pooled state).
    fn on_close(&mut self, id: ConnId, shared: &mut Self::Shared);

    /// The manager shuts down gracefully (`tern_mgr_shutdown`): end the connection
    /// once what it is doing is done (a protocol with requests in flight answers the
    /// ones it has read, then closes; one that is idle closes now). What is queued is
    /// still written. By default: close gracefully at once.
    fn on_shutdown(&mut self, cx: &mut Ctx<'_, Self::Shared>) {
        cx.close();
    }

    /// The shutdown's deadline passed and every connection still open is about to be
    /// closed hard: from now on refuse what other threads would post for them, so
    /// that what was accepted before is handled first and nothing is accepted that
    /// can no longer be delivered.
    fn on_shutdown_deadline(_shared: &mut Self::Shared) {}

    /// When this protocol next needs `on_timer`, if ever. Read after every call the
    /// reactor makes (`on_input`, `on_timer`, ...); after a call from above (the
    /// protocol's own API, through `with_proto`) only if that call said
    /// `Ctx::deadline_moved`.
    fn deadline(&self, opts: &Options) -> Option<Instant>;

    /// Unconsumed bytes the receive buffer may hold before reading pauses.
    fn recv_limit(&self, opts: &Options) -> usize {
        opts.max_recv_buffer
    }

    /// Moves what delivery `d` shows the handler out of the connection: the receive
    /// buffer `recv`, and whatever else it needs of the protocol's own buffers.
    fn lend(&mut self, d: Self::Delivery, recv: RecvBuf, shared: &mut Self::Shared) -> Self::Lent;

    /// The event a lent delivery shows.
    fn event(lent: &Self::Lent) -> Self::Event<'_>;

    /// Takes back what `lend` moved out, puts the receive buffer back in `cx.recv`
    /// and drops what the delivery consumed.
    fn give_back(&mut self, lent: Self::Lent, cx: &mut Ctx<'_, Self::Shared>);

    /// The stable number of an event (`TERN_EV_*`).
    fn event_code(ev: &Self::Event<'_>) -> i32;

    /// For a listener: the protocol its accepted connections speak. `None` for a
    /// connection that is not a listener.
    fn accepts(&self) -> Option<Self> {
        None
    }

    /// Whether raw bytes may be queued by the embedder (`tern_send`) without
    /// corrupting what the protocol writes.
    fn raw_output(&self) -> bool {
        false
    }

    /// Whether the socket should get TCP_NODELAY as soon as it is accepted (protocols
    /// that write whole answers may ask later, through `Ctx::nodelay`).
    fn nodelay_at_accept(&self) -> bool {
        true
    }
}

/// Effects a protocol asks for; the reactor carries them out when the call returns.
#[derive(Default)]
pub struct Effects {
    bits: u8,
    fail: Option<Box<Failure>>,
    /// Reported as ERROR before CLOSE, without discarding what is queued.
    error: Option<Box<Failure>>,
}

impl Effects {
    const FLUSH: u8 = 1;
    const INPUT: u8 = 1 << 1;
    const NODELAY: u8 = 1 << 2;
    const NO_LINGER: u8 = 1 << 3;
    const CLOSE: u8 = 1 << 4;
    const DEADLINE: u8 = 1 << 5;

    fn has(&self, bit: u8) -> bool {
        self.bits & bit != 0
    }

    /// Output was queued: flush it.
    pub fn flush(&self) -> bool {
        self.has(Effects::FLUSH)
    }
    /// `on_input` should run again (input is waiting that could not be handled yet).
    pub fn input(&self) -> bool {
        self.has(Effects::INPUT)
    }
    pub fn nodelay(&self) -> bool {
        self.has(Effects::NODELAY)
    }
    pub fn no_linger(&self) -> bool {
        self.has(Effects::NO_LINGER)
    }
    pub fn close(&self) -> bool {
        self.has(Effects::CLOSE)
    }
    /// The protocol's deadline may have moved earlier.
    pub fn deadline_moved(&self) -> bool {
        self.has(Effects::DEADLINE)
    }
    /// Why the connection must fail (ERROR, queue discarded, CLOSE), if it must.
    pub fn take_fail(&mut self) -> Option<Box<Failure>> {
        self.fail.take()
    }
    /// An error to report at the close, the queue still written first.
    pub fn take_error(&mut self) -> Option<Box<Failure>> {
        self.error.take()
    }
}

/// What a protocol may touch while it runs: one connection's buffers and the shared
/// state of its kind, lent by the reactor for one call.
pub struct Ctx<'a, S> {
    pub id: ConnId,
    /// Received plaintext not yet consumed (empty while a handler holds it).
    pub recv: &'a mut RecvBuf,
    pub sendq: &'a mut SendQueue,
    pub pool: &'a mut BufPool,
    pub opts: &'a Options,
    pub shared: &'a mut S,
    /// The connection still reads and writes: not closing, closed or failed.
    pub open: bool,
    /// An outgoing connection not established yet (output is queued until it is).
    pub connecting: bool,
    /// In `on_eof`: the transport cannot vouch that the stream ended where the peer
    /// meant it to (TLS without close_notify), so a body delimited by the close may
    /// be cut short.
    pub truncated: bool,
    fx: &'a mut Effects,
}

impl<'a, S> Ctx<'a, S> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(id: ConnId, recv: &'a mut RecvBuf, sendq: &'a mut SendQueue, pool: &'a mut BufPool, opts: &'a Options, shared: &'a mut S, open: bool, connecting: bool, fx: &'a mut Effects) -> Ctx<'a, S> {
        Ctx { id, recv, sendq, pool, opts, shared, open, connecting, truncated: false, fx }
    }

    /// The same context with the shared state narrowed to one protocol's part (the
    /// list of protocols hands each its own).
    pub fn narrow<'b, T>(&'b mut self, part: impl FnOnce(&'b mut S) -> &'b mut T) -> Ctx<'b, T> {
        Ctx {
            id: self.id,
            recv: &mut *self.recv,
            sendq: &mut *self.sendq,
            pool: &mut *self.pool,
            opts: self.opts,
            shared: part(&mut *self.shared),
            open: self.open,
            connecting: self.connecting,
            truncated: self.truncated,
            fx: &mut *self.fx,
        }
    }

    /// Output was queued: flush it after this call.
    pub fn flush(&mut self) {
        self.fx.bits |= Effects::FLUSH;
    }

    /// Run `on_input` again after this call.
    pub fn input_again(&mut self) {
        self.fx.bits |= Effects::INPUT;
    }

    /// A call from above made the protocol's deadline earlier: read it again.
    pub fn deadline_moved(&mut self) {
        self.fx.bits |= Effects::DEADLINE;
    }

    /// Small writes must not wait for Nagle (set once per connection).
    pub fn nodelay(&mut self) {
        self.fx.bits |= Effects::NODELAY;
    }

    /// The peer sends nothing more: a graceful close may skip waiting for its FIN.
    pub fn no_linger(&mut self) {
        self.fx.bits |= Effects::NO_LINGER;
    }

    /// Close gracefully: what is queued is written first.
    pub fn close(&mut self) {
        self.fx.bits |= Effects::CLOSE;
        self.open = false;
        self.connecting = false;
    }

    /// Close gracefully (what is queued, say a WebSocket close frame, still goes out)
    /// and report `why`, with `code` for `tern_conn_error`, as ERROR before CLOSE.
    pub fn close_with_error(&mut self, code: Error, why: impl Into<Box<str>>) {
        self.fx.error.get_or_insert_with(|| Box::new(Failure::new(code, why)));
        self.close();
    }

    /// Close with an error: ERROR(`why`), the queue discarded, then CLOSE. The
    /// error's code (`tern_conn_error`) is `Protocol`: the peer broke the protocol.
    pub fn fail(&mut self, why: impl Into<Box<str>>) {
        self.fail_with(Error::Protocol, why);
    }

    /// `fail` with the code the error is reported with.
    pub fn fail_with(&mut self, code: Error, why: impl Into<Box<str>>) {
        self.fx.fail.get_or_insert_with(|| Box::new(Failure::new(code, why)));
        self.open = false;
        self.connecting = false;
    }
}

/// A protocol whose upgrades are to itself: the list of every protocol, which is
/// what the reactor runs (`Reactor<P: Stack>`).
pub trait Stack: Protocol<Upgrade = Self> {}

impl<T: Protocol<Upgrade = T>> Stack for T {}
