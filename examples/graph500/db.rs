//! The emds structures the example stands on, named in one place.

pub use emds::{EmDict, EmVec};
