//! A protocol for the reactor's own unit tests (the reactor names no real protocol):
//! raw bytes, nothing shared, nothing posted.

use crate::buf::recv_buf::RecvBuf;
use crate::options::Options;
use crate::proto::{ConnId, Ctx, Protocol, Step};
use std::convert::Infallible;
use std::time::Instant;

pub struct TestProto;

impl Protocol for TestProto {
    type Shared = ();
    type Remote = ();
    type Posted = Infallible;
    type Delivery = Infallible;
    type Lent = Infallible;
    type Event<'a> = Infallible;
    type Upgrade = TestProto;

    fn remote_state(_: &()) {}
    fn on_input(&mut self, cx: &mut Ctx<'_, ()>) -> Step<Infallible, TestProto> {
        if cx.recv.is_empty() {
            Step::Wait
        } else {
            Step::Read
        }
    }
    fn on_eof(&mut self, cx: &mut Ctx<'_, ()>) -> Step<Infallible, TestProto> {
        cx.close();
        Step::Wait
    }
    fn on_timer(&mut self, _: &mut Ctx<'_, ()>) -> Step<Infallible, TestProto> {
        Step::Wait
    }
    fn on_posted(&mut self, _: &mut Ctx<'_, ()>, msg: Infallible) -> Step<Infallible, TestProto> {
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
}
