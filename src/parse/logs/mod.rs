//! nginx logs: the error log and access logs compiled from `log_format`. Pure: bytes in, plain
//! data out; reading files is `crate::gather::logs`.

pub mod access_log;
pub mod error_log;
pub mod summary;
pub mod time;
