//! Live evidence gathering for `reflex diagnose`: processes, sockets, kernel counters,
//! probes, unit and program state, application logs. Returns `model::evidence` data.
pub mod kernel;
pub mod probe;
pub mod procs;
pub mod sockets;

pub mod applog;
pub mod collect;
pub mod supervisord;
pub mod systemd;
