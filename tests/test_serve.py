"""``deepfake-audio serve``: the API's status codes, its JSON against ``predict --json``,
uploads that are too large, broken or missing, concurrency and the bounded queue.

The models are tiny seed_cnn checkpoints at 8 kHz (:mod:`tests.detectors`: one trained for a
few batches, one untrained with a distinctive threshold); the clips are generated here.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from deepfake_audio.serve.app import create_app
from deepfake_audio.serve.service import Service
from deepfake_audio.serve.upload import TooLarge, receive_upload
from tests.detectors import (
    fake_signal,
    real_signal,
    shared_trained_checkpoint,
    untrained_checkpoint,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("serve_models")
    trained = folder / "trained.safetensors"
    trained.write_bytes(shared_trained_checkpoint().read_bytes())
    return [trained, untrained_checkpoint(folder / "other.safetensors", seed=3, threshold=0.4123)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve_audio")
    broken = root / "broken.wav"
    broken.write_bytes(b"RIFF\xff\x00\x00\x00WAVEfmt " + b"\x00" * 64)
    return {
        "real": write_audio(root / "tone.flac", real_signal(3.0, seed=5), 16000),
        "fake": write_audio(root / "noise.wav", fake_signal(2.0, seed=6), 16000),
        "broken": broken,
    }


@pytest.fixture(scope="module")
def service(models: list[Path]) -> Iterator[Service]:
    served = Service([str(m) for m in models], workers=2, queue=32)
    yield served
    served.shutdown()


@pytest.fixture(scope="module")
def client(service: Service) -> TestClient:
    return TestClient(create_app(service, max_upload_bytes=2 * 2**20))


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where uploads go during the test: it must be empty after every request."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _post(client, path: Path, **fields: str) -> httpx.Response:
    with open(path, "rb") as handle:
        return client.post("/api/analyze", files={"file": (path.name, handle)}, data=fields)


def _predict_json(capsys, models: list[Path], path: Path, *options: str) -> dict:
    args = ["predict", str(path), *(a for m in models for a in ("--model", str(m)))]
    assert main([*args, "--json", "--workers", "1", *options]) == 0
    return json.loads(capsys.readouterr().out)


def test_health_is_200(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_models_have_windows_thresholds_and_calibration(client: TestClient) -> None:
    body = client.get("/api/models").json()
    by_name = {m["name"]: m for m in body["models"]}
    assert list(by_name) == ["trained", "other", "ensemble"]
    assert by_name["other"]["window_seconds"] == 0.25
    assert by_name["other"]["sample_rate"] == 8000
    assert by_name["other"]["threshold"] == pytest.approx(0.4123)
    assert by_name["other"]["decision"]["rule"] == "eer"
    assert by_name["other"]["calibration"] == {"scale": 1.0, "offset": 0.0, "fitted": {}}
    assert by_name["ensemble"]["members"] == ["trained", "other"]
    assert body["deciding_model"] == "ensemble"


@pytest.mark.parametrize(
    ("fields", "flags"),
    [({}, []), ({"threshold": "0.3", "aggregate": "max", "hop": "0.1"},
                ["--threshold", "0.3", "--aggregate", "max", "--hop", "0.1"])],
)  # fmt: skip
def test_analyze_gives_the_json_of_predict(
    client, models, clips, capsys, temp_root, fields, flags
) -> None:
    for clip in ("real", "fake"):
        response = _post(client, clips[clip], **fields)
        assert response.status_code == 200, response.text
        served = response.json()
        printed = _predict_json(capsys, models, clips[clip], *flags)
        (entry,) = served["files"]
        (expected,) = printed["files"]
        assert entry.pop("path") == clips[clip].name  # the upload's name, not the temp file's
        expected.pop("path")
        assert entry == expected
        assert entry["models"]["trained"]["windows"][0].keys() == {"start", "end", "p_fake"}
        for key in ("models", "aggregate"):
            assert served[key] == printed[key]
        assert served["provenance"]["models"] == printed["provenance"]["models"]
        assert list(temp_root.iterdir()) == []  # the upload is gone


def test_the_trained_model_tells_noise_from_tone(client, clips) -> None:
    fake = _post(client, clips["fake"]).json()["files"][0]["models"]["trained"]
    real = _post(client, clips["real"]).json()["files"][0]["models"]["trained"]
    assert fake["p_fake"] > real["p_fake"]


def test_undecodable_upload_is_422_with_the_reason(client, clips, temp_root) -> None:
    response = _post(client, clips["broken"])
    assert response.status_code == 422
    reason = response.json()["error"]
    assert "broken.wav" in reason and "could not decode" in reason
    assert str(temp_root) not in reason  # the temporary path is not shown
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"data": {"threshold": "0.5"}, "files": {"other": ("a.wav", b"x")}},  # no `file`
        {"content": b"not a form", "headers": {"content-type": "text/plain"}},
        {"files": {"file": ("a.wav", b"")}},  # empty
    ],
)
def test_missing_or_malformed_form_is_422(client, temp_root, request_kwargs) -> None:
    response = client.post("/api/analyze", **request_kwargs)
    assert response.status_code == 422
    assert response.json()["error"]
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize(
    "fields",
    [{"threshold": "1.5"}, {"threshold": "nan"}, {"aggregate": "median"}, {"hop": "-1"},
     {"hop": "abc"}],
)  # fmt: skip
def test_bad_fields_are_422(client, clips, temp_root, fields) -> None:
    response = _post(client, clips["real"], **fields)
    assert response.status_code == 422
    assert response.json()["error"]
    assert list(temp_root.iterdir()) == []


def test_over_the_limit_is_413(service, clips, temp_root, tmp_path) -> None:
    small = TestClient(create_app(service, max_upload_bytes=20_000))
    big = write_audio(tmp_path / "long.wav", real_signal(2.0, seed=1), 16000)  # 64 kB
    response = _post(small, big)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    assert list(temp_root.iterdir()) == []
    assert _post(small, clips["broken"]).status_code == 422  # under the limit: read


def test_reading_stops_at_the_limit(temp_root) -> None:
    """The body is read only until the file passes the limit: the rest is never pulled."""
    pulled = []
    boundary = "xyz"

    async def body():
        yield (
            f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=a.wav\r\n\r\n"
        ).encode()
        for i in range(1000):  # 64 MB if read to the end
            pulled.append(i)
            yield b"\x00" * 65536

    async def receive():
        return await receive_upload(
            f"multipart/form-data; boundary={boundary}", None, body(), 200_000
        )

    with pytest.raises(TooLarge):
        asyncio.run(receive())
    assert len(pulled) <= 5
    assert list(temp_root.iterdir()) == []


def test_declared_length_over_the_limit_is_refused_unread(temp_root) -> None:
    async def body():
        raise AssertionError("the body must not be read")
        yield b""

    async def receive():
        return await receive_upload("multipart/form-data; boundary=x", str(10**9), body(), 1000)

    with pytest.raises(TooLarge):
        asyncio.run(receive())
    assert list(temp_root.iterdir()) == []


def test_a_full_queue_is_503_with_retry_after(models, clips, temp_root) -> None:
    tiny = Service([str(models[0])], workers=1, queue=0)
    release = threading.Event()
    try:
        blocker = tiny.submit(release.wait)  # the only worker is busy, nothing may wait
        response = _post(TestClient(create_app(tiny)), clips["real"])
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert "try again" in response.json()["error"]
        assert list(temp_root.iterdir()) == []
    finally:
        release.set()
        blocker.result(timeout=10)
        tiny.shutdown()
    assert tiny.pending == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(service: Service) -> Iterator[str]:
    """The app on a real uvicorn server on a free port of 127.0.0.1."""
    port = _free_port()
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


def test_24_simultaneous_uploads_are_all_answered(server, clips, temp_root) -> None:
    def upload(i: int) -> tuple[int, str]:
        clip = clips["fake" if i % 2 else "real"]
        with open(clip, "rb") as handle, httpx.Client(timeout=120) as http:
            response = http.post(f"{server}/api/analyze", files={"file": (clip.name, handle)})
        return response.status_code, response.json()["files"][0]["verdict"]

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(upload, range(24)))
    assert [code for code, _ in answers] == [200] * 24
    assert {verdict for _, verdict in answers} <= {"FAKE", "REAL"}
    assert list(temp_root.iterdir()) == []


def test_page_openapi_and_offline_docs(server) -> None:
    with httpx.Client(timeout=30) as http:
        page = http.get(f"{server}/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for asset in ("app.js", "style.css"):
            assert f"/static/{asset}" in page.text
            assert http.get(f"{server}/static/{asset}").status_code == 200
        assert http.get(f"{server}/static/nothing.js").status_code == 404
        spec = http.get(f"{server}/openapi.json").json()
        assert "file" in json.dumps(spec["paths"]["/api/analyze"]["post"]["requestBody"])
        docs = http.get(f"{server}/docs").text
    for text in (page.text, docs):  # nothing is loaded from elsewhere
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_serve_help_imports_no_web_or_model_stack() -> None:
    probe = (
        "import sys\nfrom deepfake_audio.cli import main\n"
        "try:\n    main(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('fastapi', 'uvicorn', 'torch') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


class DevTools:
    """Chromium headless driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, profile: Path) -> None:
        import os

        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()

        def fds() -> None:  # chromium reads commands on fd 3, writes answers on fd 4
            high = os.dup(to_chrome) + 100, os.dup(from_chrome) + 100
            os.dup2(to_chrome, high[0])  # out of the way of 3 and 4 first
            os.dup2(from_chrome, high[1])
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--autoplay-policy=no-user-gesture-required", "--window-size=1280,800",
             "--no-first-run", f"--user-data-dir={profile}", "about:blank"],
            close_fds=False, preexec_fn=fds,  # python's fds are close-on-exec: only 3 and 4 pass
            stdout=subprocess.DEVNULL, stderr=open(profile.parent / 'chromium.log', 'wb'),  # noqa: SIM115
        )  # fmt: skip
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, timeout: float = 30, **params) -> dict:
        import os
        import select

        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._id:
                    assert "error" not in answer, answer["error"]
                    return answer["result"]
            left = deadline - time.monotonic()
            assert left > 0, f"no answer to {method}"
            if select.select([self._read], [], [], left)[0]:
                chunk = os.read(self._read, 1 << 20)
                assert chunk, "chromium closed the pipe"
                self._buffer += chunk

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None
)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_the_page_uploads_a_clip_and_draws_its_windows(server, tmp_path, temp_root) -> None:
    """A real browser: the page loads from uvicorn, a file is set on its input (as a user
    choosing one), Analyze is clicked, the verdict card and one timeline per model appear
    with the waveform decoded by Web Audio, and clicking a window plays it."""
    import base64
    import os

    import numpy as np

    half = (real_signal(3.0, seed=8), fake_signal(3.0, seed=9))
    clip = write_audio(tmp_path / "interview.wav", np.concatenate(half), 16000)
    browser = DevTools(tmp_path / "profile")
    try:
        page = next(t for t in browser.send("Target.getTargets")["targetInfos"]
                    if t["type"] == "page")  # fmt: skip
        browser.session = browser.send(
            "Target.attachToTarget", targetId=page["targetId"], flatten=True
        )["sessionId"]
        browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=800,
                     deviceScaleFactor=1, mobile=False)  # fmt: skip
        browser.send("Page.navigate", url=f"{server}/")
        browser.wait_for(
            "document.readyState === 'complete' && "
            "document.getElementById('models-line').textContent.includes('trained')"
        )
        root = browser.send("DOM.getDocument")["root"]["nodeId"]
        node = browser.send("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
        browser.send("DOM.setFileInputFiles", nodeId=node, files=[str(clip)])
        browser.wait_for("!document.getElementById('analyze').disabled")
        browser.evaluate("document.getElementById('analyze').click()")
        verdict = browser.wait_for(
            "!document.getElementById('result').hidden && "
            "document.querySelector('#verdict h2').textContent"
        )
        assert verdict.startswith(("FAKE", "REAL"))
        assert browser.evaluate("document.querySelectorAll('#timelines canvas').length") == 2
        browser.wait_for("state.peaks !== null")  # the waveform, decoded in the browser
        text = browser.evaluate("document.getElementById('verdict').textContent")
        assert "threshold" in text and 'rule "eer"' in text
        box = browser.evaluate(
            "(() => { const r = document.querySelector('#timelines canvas')"
            ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()"
        )
        x, y = box[0] + 34 + 0.9 * (box[2] - 38), box[1] + box[3] / 2  # a window near the end
        for kind in ("mousePressed", "mouseReleased"):
            browser.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                         clickCount=1)  # fmt: skip
        hint = browser.wait_for(
            "document.getElementById('play-hint').textContent.startsWith('Playing') && "
            "document.getElementById('play-hint').textContent"
        )
        assert "P(fake)" in hint
        browser.evaluate("document.getElementById('audio').pause()")
        shot = browser.send("Page.captureScreenshot", format="png")["data"]
        (tmp_path / "page.png").write_bytes(base64.b64decode(shot))
        if os.environ.get("SERVE_PAGE_SCREENSHOT"):  # to refresh docs/serve_page.png
            Path(os.environ["SERVE_PAGE_SCREENSHOT"]).write_bytes(base64.b64decode(shot))
    finally:
        browser.close()
    assert list(temp_root.iterdir()) == []
