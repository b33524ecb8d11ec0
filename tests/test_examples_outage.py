"""An example whose store is down at startup still boots under gunicorn, says so on its pages,
and works as soon as the store answers.

gunicorn (without ``--preload``) stops the whole server when a worker fails to boot, and it
respawns workers at any time (``--max-requests``, a crash): an app that raised at import
during a store outage would turn the outage into a server outage.
"""

from __future__ import annotations

import pytest
import requests

from tests.servers import new_redis_server
from tests.test_examples_gunicorn import GENERATE, worker_processes
from tests.ui_support import SECRET, TIMEOUT, clean_env, gunicorn, unique_name

pytestmark = pytest.mark.slow

UNAVAILABLE = "The server's session store is unavailable"


def test_data_app_boots_while_its_redis_is_down_and_recovers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    redis = new_redis_server()  # not started yet: its port refuses connections
    url = f"{redis.url}?prefix={unique_name('dash_database_test')}"
    env = clean_env(DASH_DATABASE_SECRET=SECRET, DASH_DATABASE_URL=url)
    workdir = tmp_path_factory.mktemp("outage")
    try:
        with gunicorn("examples.data_app:server", workdir, env, workers=2) as server:
            client = requests.Session()
            page = client.get(server.url, timeout=TIMEOUT)
            during = server.post(client, GENERATE)
            redis.start()
            after = server.post(client, GENERATE)
            workers = worker_processes(server.pid)
    finally:
        redis.remove()

    assert 200 == page.status_code
    assert UNAVAILABLE in during.text
    assert "321 rows" in after.text
    assert 2 == len(workers)  # both workers booted, and gunicorn kept serving
    log = (workdir / "server.log").read_text()
    assert "is not usable" in log  # each worker named the store in its log at startup
