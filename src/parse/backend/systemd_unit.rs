//! systemd unit files. (To be written.)
