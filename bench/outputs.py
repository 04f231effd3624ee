"""The benchmarks of kept outputs (issue 11):

- The batch ZIP: 200 kept outputs of 20 MB each, streamed by a real web process (gunicorn, as deployed) to
  curl. The web process's resident memory must grow by less than 50 MB, and the ZIP's throughput must be at
  least half of `cat` reading the same files to /dev/null, measured side by side, alternating, in the run.
- Copying: 100 outputs of 20 MB complete at once. The keeper thread copies them (as in run_worker, in the
  same process as polling) from a sandbox in its own process, while refresh rounds over 1,000 jobs in flight
  run back to back; the rounds' median time must stay within 1.5x of the same rounds with no copying, and
  every copy must be kept whole.

Imported by bench/run.py (which has set Django up); returns plain tuples that run.py turns into rows."""

from __future__ import annotations

import hashlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import zlib
from datetime import timedelta
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from bench.workers import ROOT, worker_env
from submissions.models import Batch, OutputCopy, Submission
from submissions.outputs import services as outputs
from submissions.sandbox.media import padded_mp4
from submissions.tracking import services as tracking

ZIP_FILES = 200
FILE_BYTES = 20 * 1024 * 1024
MAX_RSS_GROWTH_MB = 50.0
MIN_THROUGHPUT_RATIO = 0.5
ZIP_ROUNDS = 3

COPIES = 100
POLLED_JOBS = 1000
MAX_ROUND_RATIO = 1.5
BASELINE_ROUNDS = 7


# --- The batch ZIP ----------------------------------------------------------------------------------


def seed_kept_batch(owner, folder: Path) -> tuple[Batch, list[Path]]:
    """A batch of ZIP_FILES completed languages, each with a kept copy of FILE_BYTES distinct bytes."""
    batch = Batch.objects.create(name="Bench episode", created_by=owner)
    body = bytearray(os.urandom(FILE_BYTES))
    now = timezone.now()
    paths = []
    for n in range(ZIP_FILES):
        body[:16] = b"\x00\x00\x00\x10ftypmp42" + n.to_bytes(4, "big")  # every file different
        name = f"outputs/bench/{n:03}.mp4"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        paths.append(path)
        job = Submission.objects.create(
            created_by=owner, batch=batch, title=f"Bench episode {n}", target_language=f"l{n}",
            reference_id=f"bench-zip-{n}", request_id=f"bench-zip-{n}", state=Submission.State.COMPLETED,
            output_url=f"https://cdn.example.com/{n}.mp4", finished_at=now,
        )
        OutputCopy.objects.create(
            submission=job, state=OutputCopy.State.DONE, file=name, size=FILE_BYTES, crc32=zlib.crc32(body),
            sha256=hashlib.sha256(body).hexdigest(), duration_seconds=60.0, kept_at=now, next_attempt_at=None,
        )
    return batch, paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_web(port: int, log: Path, media_root: Path, sandbox_url: str) -> subprocess.Popen:
    # DEBUG stays as worker_env sets it (true): with false, pages would need collectstatic's manifest first.
    # The ZIP view renders no template and logs no query, so it streams the same either way.
    env = worker_env(
        connection=connection, sandbox_url=sandbox_url, deployment={},
        SECRET_KEY=settings.SECRET_KEY, ALLOWED_HOSTS="127.0.0.1", MEDIA_ROOT=str(media_root),
        SECURE_SSL_REDIRECT="false", SESSION_COOKIE_SECURE="false", CSRF_COOKIE_SECURE="false", SECURE_HSTS_SECONDS="0",
    )
    command = [sys.executable, "-m", "gunicorn", "dubdash.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
               "--timeout", "600", "--log-level", "warning"]
    with open(log, "a") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def web_worker_pid(master: subprocess.Popen, *, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def curl(url: str, cookie: str) -> tuple[int, float, int]:
    """(bytes received, seconds, HTTP status) of one download to /dev/null by curl."""
    result = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-b", cookie, "-w", "%{size_download} %{time_total} %{http_code}", url],
        capture_output=True, text=True, check=True, timeout=600,
    )
    size, seconds, status = result.stdout.split()
    return int(size), float(seconds), int(status)


def cat_seconds(paths: list[Path]) -> float:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["cat", *map(str, paths)], stdout=sink, check=True)
    return time.perf_counter() - started


class LoopbackCeiling:
    """The same files sent to curl over loopback TCP by the kernel (sendfile), with no Python and no ZIP per
    byte: what any web process could reach on this machine. Shown beside the target, never instead of it."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.total = sum(path.stat().st_size for path in paths)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                peer, _ = self.listener.accept()
            except OSError:  # closed: the benchmark is over
                return
            with peer:
                peer.recv(65536)
                peer.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.total}\r\nConnection: close\r\n\r\n".encode())
                for path in self.paths:
                    with open(path, "rb") as source:
                        size, offset = path.stat().st_size, 0
                        while offset < size:
                            offset += os.sendfile(peer.fileno(), source.fileno(), offset, size - offset)

    def seconds(self) -> float:
        size, seconds, _ = curl(self.url, "none=1")
        if size != self.total:
            raise RuntimeError(f"the loopback ceiling sent {size:,} of {self.total:,} bytes")
        return seconds

    def close(self) -> None:
        self.listener.close()


def zip_download(sandbox_url: str, log_dir: Path) -> list[tuple]:
    owner = get_user_model().objects.create_superuser(username="bench-zip", password="x")  # noqa: S106
    media_root = Path(settings.MEDIA_ROOT)
    batch, paths = seed_kept_batch(owner, media_root)
    client = Client()
    client.force_login(owner)  # a session in the shared database: the web process accepts its cookie
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    port = free_port()
    web = start_web(port, log_dir / "web.log", media_root, sandbox_url)
    ceiling = LoopbackCeiling(paths)
    try:
        url = f"http://127.0.0.1:{port}/batches/{batch.pk}/download.zip"
        wait_until_up(f"http://127.0.0.1:{port}/login/")
        worker = web_worker_pid(web)
        curl(f"http://127.0.0.1:{port}/", cookie)  # the first page: Django loaded and warmed up
        file_bytes = sum(path.stat().st_size for path in paths)
        cat_times, ceiling_times, zip_times, growths, sizes, statuses = [], [], [], [], [], set()
        for _ in range(ZIP_ROUNDS):
            cat_times.append(cat_seconds(paths))
            ceiling_times.append(ceiling.seconds())
            before = memory_kb(worker, "VmRSS")
            Path(f"/proc/{worker}/clear_refs").write_text("5")  # the peak (VmHWM) restarts from now
            size, seconds, status = curl(url, cookie)
            growths.append((memory_kb(worker, "VmHWM") - before) / 1024)
            zip_times.append(seconds)
            sizes.append(size)
            statuses.add(status)
    finally:
        ceiling.close()
        web.terminate()
        web.wait(timeout=30)
        for path in paths:
            path.unlink()
    if statuses != {200} or min(sizes) < file_bytes:
        raise RuntimeError(f"the ZIP download failed: HTTP {statuses}, {min(sizes):,} of at least {file_bytes:,} bytes")
    cat_rate = file_bytes / statistics.median(cat_times)
    zip_rate = max(sizes) / statistics.median(zip_times)
    ratio = zip_rate / cat_rate
    ceiling_rate = file_bytes / statistics.median(ceiling_times)
    growth = max(growths)
    scenario = f"{ZIP_FILES} kept outputs x {FILE_BYTES // 2**20} MB, gunicorn -> curl"
    return [
        (scenario, "ZIP size", f"{max(sizes) / 2**30:.2f} GiB ({len(paths) + 1} files incl. manifest.csv)", "", None),
        (scenario, "web process memory growth (max of runs)", f"{growth:.1f} MB", f"< {MAX_RSS_GROWTH_MB:g} MB",
         growth < MAX_RSS_GROWTH_MB),
        (scenario, "cat to /dev/null (median)", f"{cat_rate / 2**30:.2f} GiB/s", "", None),
        (scenario, "ZIP to curl (median)", f"{zip_rate / 2**30:.2f} GiB/s", "", None),
        (scenario, "ZIP / cat throughput", f"{ratio:.2f}", f">= {MIN_THROUGHPUT_RATIO:g}", ratio >= MIN_THROUGHPUT_RATIO),
        (scenario, "for reference: sendfile -> curl, no Python (median)", f"{ceiling_rate / 2**30:.2f} GiB/s", "", None),
        (scenario, "for reference: ZIP / sendfile", f"{zip_rate / ceiling_rate:.2f}", "", None),
    ]


def wait_until_up(url: str, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True,
                               check=False)
        if probe.stdout.strip() == "200":
            return
        time.sleep(0.2)
    raise RuntimeError("the web process did not answer")


# --- Copying beside polling ------------------------------------------------------------------------


def copying_beside_polling(latency: float, log_dir: Path) -> list[tuple]:
    """In production Chamelaion is another machine: here the sandbox runs in a process of its own, so that
    serving 2 GB of outputs does not compete with the round being measured, as it would in-process."""
    port = free_port()
    with open(log_dir / "sandbox.log", "a") as log:
        sandbox = subprocess.Popen(
            [sys.executable, "-m", "submissions.sandbox.server", "--port", str(port), "--job-seconds", "86400",
             "--rate-limit", "0", "--latency", f"{latency:g}", "--quiet"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{root}/api/health")
        with override_settings(CHAMELAION_SANDBOX_URL=f"{root}/api"):
            return _copying_beside_polling(root)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)


def _control(root: str, path: str, body: dict) -> dict:
    reply = requests.post(f"{root}/_sandbox/{path}", json=body, timeout=30)
    reply.raise_for_status()
    return reply.json()


def _copying_beside_polling(root: str) -> list[tuple]:
    owner = get_user_model().objects.create_user(username="bench-copies")
    _control(root, "config", {"output_bytes": FILE_BYTES})
    video, audio = f"{root}/files/sample-video.mp4", f"{root}/files/sample-audio.wav"
    now = timezone.now()
    finished = []
    for n in range(COPIES):
        job = _control(root, "jobs", {"video_url": video, "audio_url": audio, "reference_id": f"copy-{n}"})
        _control(root, "status", {"id": job["id"], "status": "completed"})
        finished.append(job["id"])
    polled = [_control(root, "jobs", {"video_url": video, "audio_url": audio, "reference_id": f"poll-{n}"})["id"]
              for n in range(POLLED_JOBS)]
    Submission.objects.bulk_create(
        [Submission(created_by=owner, request_id=job_id, reference_id=f"copy-{n}", state=Submission.State.COMPLETED,
                    video_url=video, audio_url=audio, finished_at=now, output_url=f"{root}/files/output/{job_id}.mp4")
         for n, job_id in enumerate(finished)]
        + [Submission(created_by=owner, request_id=job_id, reference_id=f"poll-{n}", state=Submission.State.QUEUED,
                      upstream_status="queued", video_url=video, audio_url=audio, sent_at=now - timedelta(minutes=1))
           for n, job_id in enumerate(polled)]
    )

    def round_seconds() -> float:
        due = timezone.now() - timedelta(seconds=1)
        Submission.objects.filter(state__in=Submission.UPSTREAM_IN_FLIGHT).update(next_poll_at=due)
        started = time.perf_counter()
        report = tracking.refresh_round()
        took = time.perf_counter() - started
        if report.failed or report.jobs != POLLED_JOBS:
            raise RuntimeError(f"a refresh round went wrong: {report}")
        return took

    round_seconds()  # warm-up
    baseline = [round_seconds() for _ in range(BASELINE_ROUNDS)]
    for job in Submission.objects.filter(state=Submission.State.COMPLETED):
        outputs.enqueue(submission=job)  # all 100 complete at once
    copier_started = time.perf_counter()
    stop = threading.Event()
    copier = threading.Thread(target=_copy_everything, args=(stop,), name="keeper")
    copier.start()
    during = []
    try:
        while copier.is_alive():
            during.append(round_seconds())
    finally:
        stop.set()  # a round that went wrong must not leave the copier running
        copier.join()
    copy_seconds = time.perf_counter() - copier_started

    served = hashlib.sha256(padded_mp4((ROOT / "submissions/sandbox/media/sample.mp4").read_bytes(), FILE_BYTES)).hexdigest()
    copies = list(OutputCopy.objects.all())
    kept = sum(copy.state == OutputCopy.State.DONE and copy.size == FILE_BYTES and copy.sha256 == served for copy in copies)
    with copies[0].file.open("rb") as stored:  # the stored bytes themselves, not only what was recorded
        whole = hashlib.sha256(stored.read()).hexdigest() == served
    for copy in copies:
        copy.file.storage.delete(copy.file.name)
    if not during:
        raise RuntimeError("the copies finished before a single round ran beside them")
    base, busy = statistics.median(baseline), statistics.median(during)
    ratio = busy / base
    scenario = f"{COPIES} outputs x {FILE_BYTES // 2**20} MB complete at once; rounds over {POLLED_JOBS:,} jobs"
    return [
        (scenario, "copies kept whole", f"{kept}/{COPIES} in {copy_seconds:.1f} s", "all", kept == COPIES and whole),
        (scenario, "round time, no copying (median)", f"{base:.2f} s ({BASELINE_ROUNDS} rounds)", "", None),
        (scenario, "round time while copying (median)", f"{busy:.2f} s ({len(during)} rounds)", "", None),
        (scenario, "while copying / no copying", f"{ratio:.2f}", f"<= {MAX_ROUND_RATIO:g}", ratio <= MAX_ROUND_RATIO),
    ]


def _copy_everything(stop: threading.Event) -> None:
    try:
        while not stop.is_set() and outputs.copy_due(seconds=60, stop=stop):
            pass
    finally:
        close_old_connections()
        connection.close()
