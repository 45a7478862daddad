//! Backend launch settings: uvicorn and gunicorn command lines, gunicorn `-c` config files,
//! systemd unit files and supervisord program sections. Pure: text in, data out.

pub mod cmdline;
pub mod gunicorn_conf;
pub mod supervisord;
pub mod systemd_unit;
