//! Idle-scale benchmark (issue 6): resident memory and start-up time of a
//! server holding 1,000 streams × 4 shards. Filled in by the idle-scale work.

fn main() {}
