//! The raw protocol: bytes in, bytes out. Every arrival is offered to the handler as
//! READ (all unconsumed bytes); the embedder writes with `send`. The peer's EOF closes
//! gracefully (what is queued still goes out).

use crate::buf::recv_buf::RecvBuf;
use crate::options::Options;
use crate::proto::{ConnId, Ctx, Protocol, Step};
use std::convert::Infallible;
use std::time::Instant;

/// A connection (or a listener's accepted connections) speaking raw bytes.
#[derive(Debug, Default)]
pub struct Raw;

impl Protocol for Raw {
    type Shared = ();
    type Remote = ();
    type Posted = Infallible;
    type Delivery = Infallible;
    type Lent = Infallible;
    type Event<'a> = Infallible;
    type Upgrade = Infallible;

    fn remote_state(_: &()) {}

    fn on_input(&mut self, cx: &mut Ctx<'_, ()>) -> Step<Infallible, Infallible> {
        if cx.recv.is_empty() {
            Step::Wait
        } else {
            Step::Read
        }
    }

    fn on_eof(&mut self, cx: &mut Ctx<'_, ()>) -> Step<Infallible, Infallible> {
        cx.close();
        Step::Wait
    }

    fn on_timer(&mut self, _: &mut Ctx<'_, ()>) -> Step<Infallible, Infallible> {
        Step::Wait
    }

    fn on_posted(&mut self, _: &mut Ctx<'_, ()>, msg: Infallible) -> Step<Infallible, Infallible> {
        match msg {}
    }

    fn on_close(&mut self, _: ConnId, _: &mut ()) {}

    fn deadline(&self, _: &Options) -> Option<Instant> {
        None
    }

    fn lend(&mut self, d: Infallible, _: RecvBuf, _: &mut ()) -> Infallible {
        match d {}
    }

    fn event(lent: &Infallible) -> Infallible {
        match *lent {}
    }

    fn give_back(&mut self, lent: Infallible, _: &mut Ctx<'_, ()>) {
        match lent {}
    }

    fn event_code(ev: &Infallible) -> i32 {
        match *ev {}
    }

    fn accepts(&self) -> Option<Raw> {
        None
    }

    fn raw_output(&self) -> bool {
        true
    }
}
