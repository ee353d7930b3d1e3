//! `Sequential`: children applied in order, named by their keys (BrainPy spec §8).

use crate::trace::Tensor;
use crate::vars::{Module, VarOwner, Variable, visit_child, visit_child_mut};

/// Applies named child modules in insertion order; `update` returns the last output.
#[derive(Default)]
pub struct Sequential {
    children: Vec<(String, Box<dyn Module>)>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a named child (builder style).
    pub fn push(mut self, name: impl Into<String>, m: impl Module + 'static) -> Sequential {
        self.children.push((name.into(), Box::new(m)));
        self
    }

    /// The children, in order.
    pub fn children(&self) -> &[(String, Box<dyn Module>)] {
        &self.children
    }
}

impl Module for Sequential {
    fn update(&self, x: &Tensor) -> Tensor {
        let mut y = x.clone();
        for (_, m) in &self.children {
            y = m.update(&y);
        }
        y
    }

    fn reset_state_traced(&self, tr: &crate::Tracer) {
        for (_, m) in &self.children {
            m.reset_state_traced(tr);
        }
    }

    fn reset_state(&mut self, batch: usize) {
        for (_, m) in &mut self.children {
            m.reset_state(batch);
        }
    }
}

impl VarOwner for Sequential {
    fn visit_vars(&self, f: &mut dyn FnMut(&str, &Variable)) {
        for (n, m) in &self.children {
            visit_child(n, m.as_ref(), f);
        }
    }

    fn visit_vars_mut(&mut self, f: &mut dyn FnMut(&str, &mut Variable)) {
        for (n, m) in &mut self.children {
            visit_child_mut(n, m.as_mut(), f);
        }
    }
}
