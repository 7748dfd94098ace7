"""The ``web`` runtime: the model exported to ONNX and timed in headless Chromium with onnxruntime-web's
WebAssembly backend (the page `scaleprof export --web` writes, bench/webpage.py).

The folder is served on 127.0.0.1 (cross-origin isolated, so the backend may use threads and the page's
clock resolves 5 µs); Chromium opens the page with ``?bench=1``, creates the session, times a first run
(the cold start) and then runs the model in blocks, POSTing the per-run times back every 100 ms. The
samples are taken with the browser's clock, and this side applies the same warm-up rule, adaptive stop and
statistics as every runtime (timer.warm_up, timer.sample_until_stop, stats.summarize), answering "stop" to
the page once they say so. Export, browser start and session creation are the setup time.

Threads: ``--threads`` (default torch's thread count) is the backend's numThreads. Peak memory is not
measured: it would be the browser's, not the model's.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from ..errors import one_line
from . import stats
from .runtimes import MemoryPlan, Prepared, Runtime, RuntimeUnavailable
from .timer import Measurement, TimerConfig, sample_until_stop, warm_up

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # a page that runs the model must not be throttled as a background one
                  "--disable-background-timer-throttling", "--disable-renderer-backgrounding")
READY_TIMEOUT_S = 180.0   # browser start, 14 MB of WebAssembly compiled, session created, first run
SAMPLE_TIMEOUT_S = 120.0  # the longest wait for the next block of samples


def find_chromium() -> str | None:
    """$SCALEPROF_CHROMIUM, else the first Chromium or Chrome on PATH."""
    env = os.environ.get("SCALEPROF_CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


_versions: dict[str, str | None] = {}


def chromium_version(path: str | None) -> str | None:
    """``chromium --version``'s answer ("Chromium 156.0.8078.114 ..."), once per binary; None if it gives none."""
    if not path:
        return None
    if path not in _versions:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
            _versions[path] = out.strip().splitlines()[0] if out.strip() else None
        except (OSError, subprocess.SubprocessError):
            _versions[path] = None
    return _versions[path]


def unavailable_reason() -> str | None:
    """Why the web runtime cannot run here, or None when it can."""
    from .webpage import INSTALL_HINT, find_ort_web

    missing = []
    if find_chromium() is None:
        missing.append("no chromium on PATH (apt-get install chromium, or set SCALEPROF_CHROMIUM)")
    if find_ort_web() is None:
        missing.append(f"onnxruntime-web not found ({INSTALL_HINT})")
    return "web runtime needs chromium and onnxruntime-web: " + "; ".join(missing) if missing else None


class _Handler(SimpleHTTPRequestHandler):
    """The page's folder, cross-origin isolated, and the three POSTs the page makes."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".onnx": "application/octet-stream"}

    def __init__(self, *args, session: BrowserSession, **kw):
        self.session = session
        super().__init__(*args, **kw)

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_POST(self):  # noqa: N802 (http.server's name)
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            body = {}
        answer = self.session.receive(self.path.rsplit("/", 1)[-1], body)
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # the page's requests are not the user's business
        pass


class BrowserSession:
    """One page served and opened in headless Chromium; samples arrive on a queue as the page posts them."""

    def __init__(self, folder: Path, threads: int, chromium: str):
        self.folder = folder
        self.samples: queue.Queue[float] = queue.Queue()
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.info: dict = {}
        self.error: str | None = None
        self._profile = tempfile.mkdtemp(prefix="scaleprof-chromium-")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, session=self, directory=str(folder)))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        url = f"http://127.0.0.1:{self._server.server_address[1]}/index.html?bench=1&threads={int(threads)}"
        self._log = open(os.path.join(self._profile, "chromium.log"), "wb")  # noqa: SIM115 (closed in close())
        try:
            self.proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", url],
                                         stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        except OSError as exc:
            self._close_server()
            raise RuntimeUnavailable(f"chromium did not start: {one_line(exc)}") from exc

    def receive(self, what: str, body: dict) -> dict:
        """A POST from the page: ready (its info), samples (a list of ms per run), error, done."""
        if what == "ready":
            self.info = body
            self.ready.set()
        elif what == "samples":
            for s in body.get("samples") or []:
                self.samples.put(float(s))
        elif what == "error":
            self.error = str(body.get("message") or "unknown error")
            self.ready.set()
        return {"stop": self.stop.is_set()}

    def _failure(self) -> str | None:
        if self.error:
            return f"the page failed: {self.error}"
        if self.proc.poll() is not None:
            return f"chromium exited with code {self.proc.returncode}: {self._log_tail()}"
        return None

    def _log_tail(self) -> str:
        try:
            self._log.flush()
            lines = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1].strip()[:300] if lines else "no output"

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if (why := self._failure()) or time.monotonic() > deadline:
                raise RuntimeUnavailable(why or f"the page was not ready after {timeout:.0f} s")
        if self.error:
            raise RuntimeUnavailable(f"the page failed: {self.error}")
        return self.info

    def next_ms(self, timeout: float = SAMPLE_TIMEOUT_S) -> float:
        """The next per-run time the page measured (ms), waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.samples.get(timeout=0.2)
            except queue.Empty:
                if (why := self._failure()) or time.monotonic() > deadline:
                    raise RuntimeUnavailable(why or f"no sample from the page in {timeout:.0f} s") from None

    def close(self) -> None:
        self.stop.set()
        for sig in (signal.SIGTERM, signal.SIGKILL):  # its own session: the browser and its children
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._close_server()

    def _close_server(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)


def measure_in_browser(session: BrowserSession, cfg: TimerConfig) -> Measurement:
    """The page's samples through the measuring rules every runtime shares: warm-up until the timings
    settle (or the warm-up cap), then samples until the CI target or the time limit."""
    clock = time.perf_counter
    t_start = clock()
    (warm,), _ = warm_up([lambda k: session.next_ms() / 1000.0], cfg, clock=clock, t_start=t_start)
    warmup_ms = (clock() - t_start) * 1000.0
    samples, reason = sample_until_stop(session.next_ms, cfg, clock=clock, t_start=t_start)
    session.stop.set()
    return Measurement(samples_ms=samples, cold_ms=float(session.info.get("cold_ms", float("nan"))),
                       calls_per_block=int(session.info.get("calls_per_block", 1)), warmup_blocks=len(warm),
                       warmup_ms=warmup_ms, stop_reason=reason, elapsed_s=clock() - t_start,
                       summary=stats.summarize(samples))


def _not_from_python():
    raise RuntimeUnavailable("the web runtime is timed in the browser; it has no call to time from Python")


class Web(Runtime):
    """onnxruntime-web in headless Chromium, WebAssembly backend."""

    name = "web"
    def __init__(self, threads: int | None = None):
        self.threads = threads

    def env_fields(self) -> dict:
        # the browser and onnxruntime-web set the speed of WebAssembly kernels as torch's version does eager's
        from .webpage import find_ort_web, ort_web_version

        dist = find_ort_web()
        return {"browser": chromium_version(find_chromium()),
                "ort_web": ort_web_version(dist) if dist is not None else None}

    def memory_plan(self, device: torch.device) -> MemoryPlan:
        # peak memory would be the browser's (its renderer, the WebAssembly heap), not the model's
        return MemoryPlan("none", "the web runtime's memory is the browser's; not measured")

    def prepare(self, model, inputs, device):
        if device.type != "cpu":
            raise RuntimeUnavailable("the web runtime runs on the CPU (WebAssembly); use --device cpu")
        if any(t.is_floating_point() and t.dtype != torch.float32 for t in inputs):
            raise RuntimeUnavailable("the web runtime times float32 models (onnxruntime-web's WebAssembly kernels)")
        why = unavailable_reason()
        if why:
            raise RuntimeUnavailable(why)
        from ..shapes import InputSpec
        from .export import export_model
        from .webpage import write_page

        folder = Path(tempfile.mkdtemp(prefix="scaleprof-web-"))
        session = None
        try:
            t0 = time.perf_counter()
            try:
                exporter, export_s = export_model(model, inputs, folder / "model.onnx")
            except Exception as exc:
                raise RuntimeUnavailable(one_line(exc)) from exc
            write_page(folder, folder / "model.onnx", [InputSpec(tuple(t.shape), t.dtype) for t in inputs],
                       label=type(model).__name__)
            threads = int(self.threads or torch.get_num_threads())
            session = BrowserSession(folder, threads, find_chromium())
            info = session.wait_ready()
            setup_s = time.perf_counter() - t0
        except BaseException:
            if session is not None:
                session.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise

        def cleanup():
            session.close()
            shutil.rmtree(folder, ignore_errors=True)

        details = {"exporter": exporter, "export_s": export_s, "session_s": info.get("session_ms", 0.0) / 1000.0,
                   "web_threads": info.get("threads"), "cross_origin_isolated": info.get("cross_origin_isolated"),
                   "ort_web_version": info.get("ort_web_version"), "browser": info.get("user_agent"),
                   "calls_per_block": info.get("calls_per_block")}
        # The cold start is the page's first run; setup (export, browser, session) is counted apart.
        return Prepared(call=_not_from_python, setup_s=setup_s, info=details, cleanup=cleanup,
                        onnx_path=str(folder / "model.onnx"), measure=partial(measure_in_browser, session))
