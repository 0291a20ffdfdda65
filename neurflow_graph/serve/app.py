"""The explorer as a Starlette app: each page at a stable URL, its JSON twin at the same path + `.json`.

    /                       index (models, classes: ?q= search, ?sort=, ?page=)        /index.json
    /class/{model}/{index}  a class's circuit (?run=, ?top=, ?all=1)                   /class/{model}/{index}.json
    /class/{model}/{index}/{section}  one secondary section of it (bias, sharing,      … + .json
                            faithfulness, results; ?run=): the HTML class page sends the circuit first and its
                            script fills these in after load (each a link without JS); its JSON twin holds all
    /group/{run_id}/{layer}/g{i}  a group                                              … + .json
    /neuron/{model}/{layer}/{channel}  a neuron                                        … + .json
    /run/{run_id}           a run                                                      … + .json
    /compare?a=…&b=…        two classes' shared groups                                 /compare.json?a=…&b=…
    /thumb/{run_id}/{path}  a thumbnail file from inside the run's bundle (nothing outside it)
    /crop/{run_id}/images/{i}.png?box=x0,y0,x1,y1  a patch cut from one of the bundle's images

Every HTML page shows the Cypher and parameters that produced it. Unknown things are a 404 page (or JSON
`{"error": …}`); any other failure is a one-line 500 page, never a traceback.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from neurflow_graph.query.fetch import fetch_run_info
from neurflow_graph.query.library import Runner
from neurflow_graph.serve import pages
from neurflow_graph.serve.pages import NotFound, Recorder

HERE = Path(__file__).resolve().parent
THUMBNAIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CROP_SIZE = 64
log = logging.getLogger(__name__)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = lambda v, spec="+.3f": "" if v is None or isinstance(v, Undefined) else format(v, spec)
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, default=str)
    return env


def create_app(conn: Runner) -> Starlette:
    """The explorer over `conn` (a store Connection, or any Runner); it only reads."""
    env = _environment()
    bundles: dict[str, str | None] = {}
    bundles_lock = threading.Lock()

    def page(template: str, build: Callable[[Recorder, Request, list[str]], dict[str, Any]]):
        async def endpoint(request: Request) -> Response:
            parts = [request.path_params[k] for k in ("model", "rest", "section", "path") if k in request.path_params]
            as_json = (bool(parts) and parts[-1].endswith(".json")) or request.url.path.endswith(".json")
            if as_json and parts:
                parts[-1] = parts[-1][: -len(".json")]
            recorder = Recorder(conn)
            try:
                data = await run_in_threadpool(build, recorder, request, parts)
                data["cypher"] = recorder.cypher()
                if as_json:
                    return JSONResponse(_public(data))
                html_url = request.url.path.removesuffix(".json")
                json_url = "/index.json" if html_url == "/" else html_url + ".json"
                if request.url.query:
                    json_url += "?" + request.url.query
                body = env.get_template(template).render(**data, json_url=json_url, request=request)
            except NotFound as exc:
                return _error(env, as_json, 404, "Not found", str(exc), request)
            except Exception as exc:  # noqa: BLE001 - a page never shows a traceback; the log keeps it
                log.exception("page %s failed", request.url.path)
                return _error(env, as_json, 500, "The page could not be made", f"{type(exc).__name__}: {exc}",
                              request)
            return HTMLResponse(body)

        return endpoint

    def index(rec: Recorder, request: Request, parts: list[str]) -> dict[str, Any]:
        q = request.query_params
        return pages.index_page(rec, q.get("q", ""), q.get("sort", "index"), _int(q.get("page"), 1))

    def cls(rec: Recorder, request: Request, parts: list[str]) -> dict[str, Any]:
        q = request.query_params
        sections = pages.CLASS_SECTIONS if request.url.path.endswith(".json") else ()  # HTML: the circuit first
        return pages.class_page(rec, "/".join(parts), run_id=q.get("run") or None, top_n=_int(q.get("top"), None),
                                show_all=q.get("all") in ("1", "true"), sections=sections)

    def section(rec: Recorder, request: Request, parts: list[str]) -> dict[str, Any]:
        return pages.class_section(rec, "/".join(parts[:2]), parts[2], run_id=request.query_params.get("run") or None)

    def group(rec: Recorder, request: Request, parts: list[str]) -> dict[str, Any]:
        return pages.group_page(rec, parts[0])

    def neuron(rec: Recorder, request: Request, parts: list[str]) -> dict[str, Any]:
        return pages.neuron_page(rec, parts[0])

    def run(rec: Recorder, request: Request, parts: list[str]) -> dict[str, Any]:
        return pages.run_page(rec, parts[0])

    def compare(rec: Recorder, request: Request, parts: list[str]) -> dict[str, Any]:
        q = request.query_params
        return pages.compare_page(rec, q.get("a", ""), q.get("b", ""))

    def bundle_of(run_id: str) -> str | None:
        with bundles_lock:
            if run_id in bundles:
                return bundles[run_id]
        try:
            found = fetch_run_info(conn, run_id).bundle_path
        except Exception:  # noqa: BLE001 - an unknown run has no thumbnails
            found = None
        with bundles_lock:
            bundles[run_id] = found
        return found

    async def thumbnail(request: Request) -> Response:
        run_id, relative = request.path_params["run_id"], request.path_params["path"]
        bundle = await run_in_threadpool(bundle_of, run_id)
        target = inside_bundle(bundle, relative)
        if target is None:
            return Response(f"no thumbnail {relative!r} in the bundle of run {run_id!r}\n", status_code=404,
                            media_type="text/plain")
        return FileResponse(target, headers={"Cache-Control": "max-age=3600"})

    async def crop(request: Request) -> Response:
        run_id, relative = request.path_params["run_id"], request.path_params["path"]
        bundle = await run_in_threadpool(bundle_of, run_id)
        target = inside_bundle(bundle, relative)
        box = _box(request.query_params.get("box", ""))
        png = await run_in_threadpool(crop_png, target, box) if target is not None and box is not None else None
        if png is None:
            return Response(f"no patch {request.query_params.get('box', '')!r} of {relative!r} in the bundle of run "
                            f"{run_id!r}\n", status_code=404, media_type="text/plain")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(env, request.url.path.endswith(".json"), 404, "Not found",
                      f"there is no page at {request.url.path}", request)

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(env, request.url.path.endswith(".json"), 500, "The page could not be made",
                      type(exc).__name__, request)

    routes = [
        Route("/", page("index.html", index)),
        Route("/index.json", page("index.html", index)),
        Route("/class/{model}/{rest}", page("class.html", cls)),
        Route("/class/{model}/{rest}/{section}", page("class_section.html", section)),
        Route("/group/{path:path}", page("group.html", group)),
        Route("/neuron/{path:path}", page("neuron.html", neuron)),
        Route("/run/{path:path}", page("run.html", run)),
        Route("/compare", page("compare.html", compare)),
        Route("/compare.json", page("compare.html", compare)),
        Route("/thumb/{run_id}/{path:path}", thumbnail),
        Route("/crop/{run_id}/{path:path}", crop),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 500: server_error})


def inside_bundle(bundle: str | None, relative: str) -> Path | None:
    """`bundle/relative` when it is an image file inside the bundle folder (links resolved), else None."""
    if not bundle or not relative:
        return None
    try:
        root = Path(bundle).resolve(strict=True)
        target = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or not target.is_file() or target.suffix.lower() not in THUMBNAIL_SUFFIXES:
        return None
    return target


def crop_png(image: Path, box: tuple[int, int, int, int], size: int = CROP_SIZE) -> bytes | None:
    """The box of an image file as a size×size PNG (pixels kept sharp), or None when it is not a box of it."""
    from PIL import Image

    try:
        with Image.open(image) as picture:
            x0, y0, x1, y1 = box
            if not (0 <= x0 < x1 <= picture.width and 0 <= y0 < y1 <= picture.height):
                return None
            patch = picture.convert("RGB").crop(box).resize((size, size), Image.Resampling.NEAREST)
    except OSError:
        return None
    out = io.BytesIO()
    patch.save(out, format="PNG")
    return out.getvalue()


def _box(text: str) -> tuple[int, int, int, int] | None:
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        return None
    x0, y0, x1, y1 = (int(p) for p in parts)
    return x0, y0, x1, y1


def _int(text: str | None, default: int | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else default
    except ValueError:
        return default


def _public(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON twin: the page's data without its drawing (the SVG is the HTML page's)."""
    out = dict(data)
    for side in ("a", "b"):
        if isinstance(out.get(side), dict) and "svg" in out[side]:
            out[side] = {k: v for k, v in out[side].items() if k != "svg"}
    out.pop("svg", None)
    return out


def _error(env: Environment, as_json: bool, status: int, title: str, message: str, request: Request) -> Response:
    if as_json:
        return JSONResponse({"error": message, "status": status}, status_code=status)
    body = env.get_template("error.html").render(title=title, message=message, status=status, request=request,
                                                 cypher=[], json_url=None)
    return HTMLResponse(body, status_code=status)
