"""The origin the front-end and tunnel benchmarks put behind hearth: `python origin.py PORT`.

A tiny aiohttp app in its own process, so what is measured is the path to
it. GET /small: 200 bytes. GET /big: 256 MiB. GET /download?n=N: N bytes.
POST /upload: reads the body and answers with its byte count. It imports
nothing of hearth's and is run as a file.
"""
import sys

from aiohttp import web

SMALL = (b"hearth front-end benchmark: two hundred bytes of body, no more and no less. " * 3)[:200]
BIG = 256 * 1024 * 1024
CHUNK = bytes(range(256)) * 4096  # 1 MiB, written again and again


async def small(request):
    return web.Response(body=SMALL, content_type="text/plain")


async def stream(request, size: int):
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    left = size
    while left:
        piece = CHUNK if left >= len(CHUNK) else CHUNK[:left]
        await response.write(piece)
        left -= len(piece)
    await response.write_eof()
    return response


async def big(request):
    return await stream(request, BIG)


async def download(request):
    return await stream(request, int(request.query["n"]))


async def upload(request):
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
    return web.Response(text=str(size))


if __name__ == "__main__":
    app = web.Application(client_max_size=0)
    app.router.add_get("/small", small)
    app.router.add_get("/big", big)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
