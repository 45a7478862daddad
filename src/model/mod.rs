//! The plain-data model shared by gathering, diagnosis and reporting.

pub mod backend;
pub mod nginx;
