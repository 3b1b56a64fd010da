"""The explorer page: data as embedded JSON, one self-contained HTML file, a local server.

Arrays travel as ``{"dtype": "f4"|"f8", "shape": [...], "b64": "..."}``: the
little-endian bytes in base64, so float64 values reach the page (and the tests) exactly
and the file stays a fraction of the size of decimal text.  Every other number is a
plain JSON number.  The page (``template.html``, ``explorer.css``, ``explorer.js``) uses
no network, no CDN and no library: it opens from disk.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import threading
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from ..types import PathLike

HERE = Path(__file__).resolve().parent
DATA_ID = "explorer-data"
_DTYPES = {"f4": "<f4", "f8": "<f8"}


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


def encode_array(a: ArrayLike, dtype: str = "f8", sparse: bool = False) -> dict:
    """``{"dtype", "shape", "b64"}`` for an array (``dtype`` "f8" keeps float64 exact).

    With ``sparse=True`` and at most a third of the entries nonzero (a Jacobian block),
    ``b64`` holds only the nonzero values and ``nz`` their flat indices (uint32).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"encode_array: dtype must be 'f4' or 'f8', got {dtype!r}")
    a = np.asarray(a, dtype=_DTYPES[dtype])
    out = {"dtype": dtype, "shape": list(a.shape)}
    flat = a.reshape(-1)
    nz = np.flatnonzero(flat)
    if sparse and nz.size * 3 <= flat.size:
        out.update(b64=_b64(flat[nz]), nz=_b64(nz.astype("<u4")))
    else:
        out["b64"] = _b64(flat)
    return out


def decode_array(obj: dict) -> np.ndarray:
    """The array :func:`encode_array` encoded, as float64."""
    if not isinstance(obj, dict) or obj.get("dtype") not in _DTYPES:
        raise ValueError(f"decode_array: expected an encoded array, got {str(obj)[:80]}")
    values = np.frombuffer(base64.b64decode(obj["b64"]), dtype=_DTYPES[obj["dtype"]]).astype(np.float64)
    if "nz" not in obj:
        return values.reshape(obj["shape"])
    out = np.zeros(int(np.prod(obj["shape"])))
    out[np.frombuffer(base64.b64decode(obj["nz"]), dtype="<u4")] = values
    return out.reshape(obj["shape"])


def render_page(data: dict) -> str:
    """The HTML page holding ``data`` as JSON (``<`` escaped so the script tag cannot close early)."""
    template = (HERE / "template.html").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    title = str(data.get("title", "Backprop explorer")).replace("&", "&amp;").replace("<", "&lt;")
    return (template.replace("/*__STYLE__*/", (HERE / "explorer.css").read_text(encoding="utf-8"))
                    .replace("/*__SCRIPT__*/", (HERE / "explorer.js").read_text(encoding="utf-8"))
                    .replace("__TITLE__", title)
                    .replace("__DATA__", payload))


def write_page(data: dict, out_dir: PathLike) -> Path:
    """Write ``out_dir/index.html``; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(render_page(data), encoding="utf-8")
    return path


def read_page_data(path: PathLike) -> dict:
    """The JSON embedded in a page written by :func:`write_page`."""
    text = Path(path).read_text(encoding="utf-8")
    start_tag = f'<script id="{DATA_ID}" type="application/json">'
    start = text.find(start_tag)
    if start < 0:
        raise ValueError(f"read_page_data: {path} holds no explorer data")
    start += len(start_tag)
    return json.loads(text[start:text.index("</script>", start)])


#: Debian's Chromium and the flags the explorer runs it with (no sandbox as root, no GPU,
#: nothing that reaches the network).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run")


def page_url(html_path: PathLike, step: int = 1, example: int = 1) -> str:
    """The ``file://`` address of the page opened at backward step ``step`` of example ``example``.

    Both count from 1, as the page does ("Step 1 of 6" is the loss; keys 1, 2, ...
    pick the examples): ``index.html#step=4&example=2``.
    """
    if int(step) < 1 or int(example) < 1:
        raise ValueError(f"page_url: step and example count from 1, got step={step}, example={example}")
    return f"{Path(html_path).resolve().as_uri()}#step={int(step)}&example={int(example)}"


def screenshot(html_path: PathLike, png_path: PathLike, step: int = 1, example: int = 1, width: int = 1366,
               until: str = "#backward-card",
               executable_path: str = CHROMIUM, palette: bool = True, browser: Any = None) -> Path:
    """A PNG of the page at backward step ``step`` of example ``example`` (both 1-based,
    as on the page: step 1 is the loss).

    Drives Chromium through Playwright (``pip install playwright``; ``apt-get install
    chromium``; Playwright never downloads a browser here).  The image is ``width``
    pixels wide and runs from the top of the page to the bottom of ``until`` (a CSS
    selector; None for the whole page).  With ``palette`` and Pillow installed it is
    stored with an adaptive 256-colour palette, a fraction of the size.  ``browser``:
    an already launched Playwright browser to use instead of launching one.
    """
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    url = page_url(html_path, step, example)
    if browser is not None:
        _shoot(browser, url, png_path, int(width), until)
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise ImportError("screenshot needs Playwright for Python (pip install playwright) and Chromium "
                              "(apt-get install chromium)") from None
        if not Path(executable_path).exists():
            raise FileNotFoundError(f"screenshot: no browser at {executable_path}; install Chromium "
                                    "(apt-get update && apt-get install -y chromium)")
        with sync_playwright() as p:
            launched = p.chromium.launch(executable_path=str(executable_path), args=list(CHROMIUM_ARGS))
            try:
                _shoot(launched, url, png_path, int(width), until)
            finally:
                launched.close()
    if palette:
        try:
            from PIL import Image
        except ImportError:
            return png_path
        with Image.open(png_path) as im:
            small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        small.save(png_path, optimize=True)
    return png_path


def _shoot(browser: Any, url: str, png_path: Path, width: int, until: Optional[str]) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        errors: List[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=30000)
        if errors:
            raise RuntimeError(f"screenshot: the page reported errors: {errors}")
        if until:
            bottom = page.evaluate(f"document.querySelector({json.dumps(until)}).getBoundingClientRect().bottom"
                                   " + window.scrollY")
            page.screenshot(path=str(png_path), full_page=True,
                            clip={"x": 0, "y": 0, "width": width, "height": int(bottom) + 14})
        else:
            page.screenshot(path=str(png_path), full_page=True)
    finally:
        page.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def start_server(directory: PathLike, port: int = 0, quiet: bool = True) -> Tuple[http.server.ThreadingHTTPServer,
                                                                         threading.Thread, str]:
    """Serve ``directory`` on 127.0.0.1 in a background thread.

    Parameters
    ----------
    directory : path
    port : int, default=0
        0 picks a free port.
    quiet : bool, default=True
        No request log on stderr.

    Returns
    -------
    (server, thread, url)
        Stop it with :func:`stop_server`.
    """
    handler_cls = _QuietHandler if quiet else http.server.SimpleHTTPRequestHandler
    handler = functools.partial(handler_cls, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
    thread = threading.Thread(target=server.serve_forever, name="explore-server", daemon=True)
    thread.start()
    host, bound = server.server_address[:2]
    return server, thread, f"http://{host!s}:{bound}/"  # host: a str for an AF_INET server


def stop_server(server: http.server.ThreadingHTTPServer, thread: threading.Thread, timeout: float = 5.0) -> None:
    """Stop a server from :func:`start_server`, close its socket and join its thread."""
    server.shutdown()
    server.server_close()
    thread.join(timeout)
    if thread.is_alive():
        raise RuntimeError("stop_server: the server thread did not stop")
