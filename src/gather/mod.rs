//! Everything that reads the system: configuration files, `/proc`, sysctls, the filesystem,
//! name resolution. It returns plain data; it never decides what the data means.

pub mod backends;
pub mod evidence;
pub mod host;
pub mod logs;
pub mod logwindow;
pub mod nginx_conf;
pub mod nginx_proc;
