//! Parser benchmarks for nginx logs (being written).

fn main() {}
