//! State that a layer above the protocols keeps per manager (the fetch client's pool
//! and requests in flight). The reactor stores it, one value per type, and tells it
//! when the manager is freed; it knows nothing else of it, so no layer above has to
//! be named here.

use super::Reactor;
use crate::proto::Stack;
use std::any::{Any, TypeId};
use std::rc::Rc;

/// What the reactor asks of a layer's state.
pub trait Layer<P: Stack>: 'static {
    /// The manager is being freed and every connection has closed: end whatever is
    /// left (run the callbacks still owed, on the loop thread). Called once.
    fn on_free(&self, mgr: &Reactor<P>);
}

/// One layer's state: its type, the value (to downcast) and its hooks (the same value).
type Entry<P> = (TypeId, Rc<dyn Any>, Rc<dyn Layer<P>>);

/// The layers' states of one manager.
pub(super) struct Layers<P: Stack> {
    list: Vec<Entry<P>>,
}

impl<P: Stack> Default for Layers<P> {
    fn default() -> Layers<P> {
        Layers { list: Vec::new() }
    }
}

impl<P: Stack> Reactor<P> {
    /// The state of layer type `T` on this manager, made by `make` on first use.
    /// `make` must not ask for a layer itself.
    pub fn layer<T: Layer<P>>(&self, make: impl FnOnce() -> T) -> Rc<T> {
        if let Some(found) = self.find_layer::<T>() {
            return found;
        }
        let made = Rc::new(make());
        let any: Rc<dyn Any> = made.clone();
        let hooks: Rc<dyn Layer<P>> = made.clone();
        self.layers.borrow_mut().list.push((TypeId::of::<T>(), any, hooks));
        made
    }

    fn find_layer<T: Layer<P>>(&self) -> Option<Rc<T>> {
        let layers = self.layers.borrow();
        let (_, any, _) = layers.list.iter().find(|(t, ..)| *t == TypeId::of::<T>())?;
        any.clone().downcast::<T>().ok()
    }

    /// Tells every layer that the manager is being freed (after its connections).
    pub(super) fn free_layers(&self) {
        // Cloned out first: a layer's callbacks may ask for a layer.
        let hooks: Vec<Rc<dyn Layer<P>>> = self.layers.borrow().list.iter().map(|(_, _, h)| h.clone()).collect();
        for h in hooks {
            h.on_free(self);
        }
    }
}
