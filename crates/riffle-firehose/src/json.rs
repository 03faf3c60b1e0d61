//! The JSON 1.1 codec of Firehose: `riffle-coral`'s, shared with every JSON
//! service, since AWS's Java front end types and words them all alike.

pub use riffle_coral::json::*;
