//! The sans-IO state machine (engine helper).

use crate::types::{Config, Input, Instant, Output, Stats};

pub struct Engine {
    _private: (),
}

impl Engine {
    pub fn new(_config: Config, _now: Instant, _seed: u64) -> Self {
        todo!("engine helper")
    }
    pub fn handle_input(&mut self, _now: Instant, _input: Input) {
        todo!()
    }
    pub fn handle_timeout(&mut self, _now: Instant) {
        todo!()
    }
    pub fn poll_output(&mut self) -> Option<Output> {
        todo!()
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
    pub fn stats(&self) -> Stats {
        todo!()
    }
    pub fn config(&self) -> &Config {
        todo!()
    }
}
