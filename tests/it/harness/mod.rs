//! Test harness: temp dirs, real nginx, real uvicorn/gunicorn. (To be written.)
