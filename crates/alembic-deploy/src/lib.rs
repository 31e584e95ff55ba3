//! Plans, operations and the one executor that runs them. The only crate with side effects.

pub mod fsio;
