"""The worker process (the Procfile's command) declares its dead-letter queues with
DEAD_LETTER_TTL_SECONDS."""

from __future__ import annotations

import urllib.parse
import uuid

from messaging.queues import step_queues
from tests.support import isolation
from tests.support.fleet import fleet_environment
from tests.support.isolation import management, own_vhost
from tests.support.polling import eventually_sync
from tests.support.processes import running


def dead_letter_ttls(vhost: str) -> dict[str, object]:
    """``x-message-ttl`` of every ``.XQ`` queue declared in ``vhost``."""
    queues = management("GET", f"/api/queues/{urllib.parse.quote(vhost, safe='')}")
    return {
        queue["name"]: queue["arguments"].get("x-message-ttl")  # type: ignore[index]
        for queue in queues
        if queue["name"].endswith(".XQ")
    }  # type: ignore[union-attr]


def test_the_worker_declares_every_dead_letter_queue_with_the_configured_ttl(run_name, tmp_path):
    name = f"{run_name}_{uuid.uuid4().hex[:6]}"
    wanted = {f"{queue}.XQ" for queue in step_queues()}
    with own_vhost(name) as broker_url:
        # The worker boots without touching the database.
        env = fleet_environment(
            database_url="mysql+aiomysql://root@127.0.0.1:3306/unused",
            broker_url=broker_url,
            redis_url=isolation.REDIS_URL,
            workdir=tmp_path,
            DEAD_LETTER_TTL_SECONDS="86400",
        )

        with running("worker", env, tmp_path / "worker.log"):
            eventually_sync(
                lambda: wanted <= set(dead_letter_ttls(name)),
                timeout=30,
                what="the worker to declare every dead-letter queue",
            )
            ttls = dead_letter_ttls(name)

    assert {queue: ttls[queue] for queue in wanted} == {queue: 86_400_000 for queue in wanted}
