"""The worker refuses jobs carrying RQ webhooks, dependencies or fields the project never sets, with no request
sent anywhere (real Redis, a real `music-classifier worker --burst`, a listening HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq import Webhook
from test_jobs_rq import Env

from music_classifier.jobs.tasks import librosa_track

pytestmark = pytest.mark.redis


def run_worker(env: Env) -> str:
    """One burst worker, without the extractor warm-up (no job here gets as far as extracting)."""
    proc = env.worker("--no-preload")
    try:
        out, _ = proc.communicate(timeout=300)  # a ceiling against hangs only
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    return out.decode()


@pytest.fixture
def rq_env(tmp_path, redis_url):
    env = Env(tmp_path, redis_url)
    yield env
    env.cleanup()


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 answering 200 to anything; the list records every request it got."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append(f"{self.command} {self.path} {self.rfile.read(length)[:200]!r}")
            self.send_response(200)
            self.end_headers()

        do_GET = do_POST = _record  # noqa: N815 - http.server's naming

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_jobs_with_webhooks_dependencies_or_foreign_fields_are_refused_without_a_request(rq_env, listener):
    url, received = listener
    hooks = [Webhook(f"{url}/{status}", status, method="POST", headers={"X-Evil": "1"}, timeout=2)
             for status in ("failed", "finished")]
    queue, prefix = rq_env.queue, rq_env.queue_name
    jobs = {
        # The probe: any function name, refused or not, and the webhooks fire on the failure.
        "foreign function": queue.enqueue("os.getcwd", job_id=f"{prefix}-os", webhooks=hooks),
        "webhooks": queue.enqueue(librosa_track, 10**9, job_id=f"{prefix}-hooked", webhooks=hooks),
        "dependency": queue.enqueue(librosa_track, 10**9, job_id=f"{prefix}-dep"),
        "field": queue.enqueue(librosa_track, 10**9, job_id=f"{prefix}-field"),
        "repeat": queue.enqueue(librosa_track, 10**9, job_id=f"{prefix}-repeat"),
    }
    # What an attacker with Redis access writes straight into the job hashes.
    raw_hook = json.dumps([{"url": f"{url}/dep", "job_status": "failed", "method": "GET"}])
    rq_env.redis.hset(jobs["dependency"].key, mapping={"dependency_ids": '["someone-elses-job"]',
                                                       "webhooks": raw_hook})
    rq_env.redis.hset(jobs["field"].key, "x_future_rq_field", "1")
    rq_env.redis.hset(jobs["repeat"].key, mapping={"repeats_left": "3", "repeat_intervals": "[0]"})

    out = run_worker(rq_env)

    assert received == [], received  # no request left the worker, whatever the job asked for
    expected = {"foreign function": "function 'os.getcwd' is not a music_classifier task",
                "webhooks": "job webhooks are not allowed",
                "dependency": "job webhooks are not allowed",  # the first reason found
                "field": "job fields the project never sets: x_future_rq_field",
                "repeat": "job fields the project never sets: repeat_intervals, repeats_left"}
    for what, job in jobs.items():
        job.refresh()
        assert job.get_status().value == "failed", (what, out)
        assert job.latest_result().exc_string == f"refused: {expected[what]}", what
        assert f"refused job {job.id}: {expected[what]}" in out


def test_a_dependency_alone_is_refused(rq_env, listener):
    job = rq_env.queue.enqueue(librosa_track, 10**9, job_id=f"{rq_env.queue_name}-dep-only")
    rq_env.redis.hset(job.key, "dependency_ids", '["someone-elses-job"]')
    run_worker(rq_env)
    job.refresh()
    assert job.latest_result().exc_string == "refused: job dependencies are not allowed"
    assert listener[1] == []
