//! gunicorn `-c` config files (simple Python assignments). (To be written.)
