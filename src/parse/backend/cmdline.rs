//! uvicorn / gunicorn command lines → [`Backend`]. (To be written.)
