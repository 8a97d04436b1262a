"""Greenhouse attachment files: the download links `/v3/attachments` hands out, served here.

    GET /_files/greenhouse/attachments/<id>/<filename>   the file's bytes (no bearer token: a
                                                          pre-signed storage link, as Harvest's)
    PUT /_sandbox/files/greenhouse/lost  {"ids": [..], "status": 404}   make those downloads
                                                          fail (a lost blob: 404 NoSuchKey;
                                                          403 AccessDenied; 500 InternalError)

Stored attachment docs hold their link under ats_history.FILES_ORIGIN; the API rewrites it to the
origin the request came in on, so a client downloads from the server it listed from. A file's
bytes are made from its attachment (world/ats_history.py `file_bytes`): the same at every
download, gone with the attachment. Failures answer like the object store behind the links:
an XML error body.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.greenhouse.lists import get_doc
from sandbox.state import SandboxState
from sandbox.world.ats_history import FILES_ORIGIN, file_bytes

LOST_KEY = "greenhouse:lost_files"     # meta: {"<attachment id>": status}
S3_ERRORS = {403: ("AccessDenied", "Request has expired"),
             404: ("NoSuchKey", "The specified key does not exist."),
             500: ("InternalError", "We encountered an internal error. Please try again.")}


def with_origin(body: str, request: Request) -> str:
    """Stored attachment links rewritten to the origin the request came in on."""
    return body.replace(FILES_ORIGIN, f"{request.url.scheme}://{request.url.netloc}")


def routes(state: SandboxState) -> list[BaseRoute]:
    """The download route (mounted at /_files)."""
    async def download(request: Request) -> Response:
        id_ = request.path_params["id"]
        doc = get_doc(state.store, "attachments", id_) if id_.isdigit() else None
        lost = json.loads(state.store.get_meta(LOST_KEY) or "{}")
        if doc is None or id_ in lost:
            return _s3_error(int(lost.get(id_, 404)), request.url.path)
        data = json.loads(doc)
        return Response(file_bytes(data), media_type="application/pdf", headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(data['filename'])}"})

    return [Route("/greenhouse/attachments/{id}/{filename}", download, methods=["GET"])]


def admin_routes(state: SandboxState) -> list[BaseRoute]:
    """Breaking downloads on purpose (mounted under /_sandbox)."""
    async def lost(request: Request) -> Response:
        body = await request.json()
        ids, status = body.get("ids"), body.get("status", 404)
        if not isinstance(ids, list) or status not in S3_ERRORS:
            return JSONResponse({"error": "send {\"ids\": [attachment ids], \"status\": "
                                          f"{' | '.join(map(str, S3_ERRORS))}}}"},
                                status_code=400)
        with state.store.transaction():
            current = json.loads(state.store.get_meta(LOST_KEY) or "{}")
            current.update({str(i): status for i in ids})
            state.store.set_meta(LOST_KEY, current)
        return JSONResponse({"lost": sorted(current)})

    return [Route("/files/greenhouse/lost", lost, methods=["PUT"])]


def _s3_error(status: int, key: str) -> Response:
    code, message = S3_ERRORS[status]
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><Key>{key}</Key></Error>")
    return Response(body, status_code=status, media_type="application/xml")
