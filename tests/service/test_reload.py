"""``POST /dcm4chee-arc/ctrl/reload`` on the running service: 204 and a log line naming
what changed; 409 for an invalid file, which leaves the running configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.logger import globalLogPublisher

from tests.service.test_end_to_end import start_stowpair


async def reload(service: Any) -> Any:
    port = service.rest_port.getHost().port
    return await treq.post(f"http://127.0.0.1:{port}/dcm4chee-arc/ctrl/reload", reactor=reactor)


@pytest_twisted.ensureDeferred
async def test_reload_names_what_changed(tmp_path: Path) -> None:
    """When an exporter is added and a queue changed, reload answers 204 and logs both."""
    service = await start_stowpair(tmp_path, 9)
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        conf = tmp_path / "stowpair.toml"
        text = conf.read_text().replace('retry_delay = "PT1S"', 'retry_delay = "PT2S"')
        conf.write_text(text + '[exporters.Other]\nuri = "stow:dest"\nqueue = "Export1"\n'
                        'ae_title = "E2E"\n')  # fmt: skip
        response = await reload(service)
        assert response.code == 204
        [event] = [e for e in seen if e.get("event") == "config.reloaded"]
        assert event["exporters"] == {"added": ["Other"], "changed": [], "removed": []}
        assert event["queues"]["changed"] == ["Export1"]
        assert event["summary"] == "exporters added: Other; queues changed: Export1"
        conf.write_text(text.replace("[[rules]]", "[[rules]]\nbogus = 1"))
        refused = await reload(service)
        assert refused.code == 409
        assert "bogus" in (await refused.json())["errorMessage"]
        assert "Other" in service.config.exporters
    finally:
        globalLogPublisher.removeObserver(seen.append)
        await service.stopService()
