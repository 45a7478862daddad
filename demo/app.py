"""The demo's FastAPI app: run once under uvicorn (unix socket) and once under gunicorn with
UvicornWorker (TCP), behind the misconfigured nginx in demo/nginx.conf.in."""

import os

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/health")
def health():
    return {"ok": True}


@app.get("/")
def root(request: Request):
    return {
        "served_by": os.getpid(),
        "scheme_seen_by_app": request.url.scheme,
        "x_forwarded_proto": request.headers.get("x-forwarded-proto"),
    }
