//! Pure parsers: they take `&str` and return plain data plus a list of errors.
//! Nothing in here opens a file; `crate::gather` does the reading.

pub mod backend;
pub mod logs;
pub mod nginx;
