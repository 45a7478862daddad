//! The plain-data model shared by gathering, diagnosis and reporting.

pub mod backend;
pub mod evidence;
pub mod host;
pub mod logs;
pub mod nginx;
