"""The loud opt-out on the dashboard: the overview's banner and the agents page's marks for
agents without the sandbox or on the host network, in HTML and JSON, over a real apply."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash_harness import Mission, git_env, make_app
from fastapi.testclient import TestClient
from helpers.mission_repo import GitRepo
from test_dash_pages import flat

AGENT_CODE = "pass"


def _mission(root: Path, mission_sandbox: str) -> Mission:
    """Applied (first use, so nothing waits) without running anything."""
    repo = GitRepo(root)
    repo.init()
    repo.write_doc("mission.yaml", "Mission", "boxes", {"sandbox": mission_sandbox})
    agents: dict[str, dict[str, Any]] = {
        "boxed": {"sandbox": "bwrap"},
        "loose": {"sandbox": "none"},
        "caller": {"network": "host", "mounts": [{"path": "/srv/models", "mode": "ro"}]},
    }
    for name, spec in agents.items():
        repo.agent(name, command=repo.agent_program(name, AGENT_CODE), **spec)
    repo.commit("agents with and without the sandbox")
    done = repo.apply_now(None)
    assert done.result is not None and not done.result.pending
    return Mission(root)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with git_env():
        mission = _mission(tmp_path / "mission", "bwrap")
    with TestClient(make_app(mission)) as c:
        yield c


def test_overview_banner_names_the_unconfined_and_networked_agents(client: TestClient) -> None:
    page = client.get("/").text
    banner = re.search(
        r'<div class="alert unconfined" id="unconfined" role="alert">(.*?)</div>', page, re.S
    )
    assert banner is not None
    text = flat(banner.group(1))
    assert text.startswith("1 agent(s) run UNCONFINED, without the sandbox (sandbox: none): loose")
    assert '<a href="/agents#agent-loose">loose</a>' in banner.group(1)
    assert "boxed" not in text and "caller" not in text
    network = re.search(
        r'<div class="alert network-host" id="network-host"[^>]*>(.*?)</div>', page, re.S
    )
    assert network is not None
    assert flat(network.group(1)) == "1 agent(s) can reach the network (network: host): caller ."


def test_overview_json_has_the_exposure(client: TestClient) -> None:
    body = client.get("/api/overview").json()
    assert body["exposure"] == {
        "mission_sandbox": "bwrap",
        "unconfined": [{"agent": "loose", "by": "agent"}],
        "network_host": ["caller"],
    }


def test_agents_page_marks_each_agent(client: TestClient) -> None:
    page = client.get("/agents").text
    rows = {
        name: row for name, row in re.findall(r'<tr data-agent="([^"]+)">(.*?)</tr>', page, re.S)
    }
    assert 'class="badge sandbox-none"' in rows["loose"]
    assert 'class="badge sandbox-none"' not in rows["boxed"] + rows["caller"]
    assert 'class="badge network-host"' in rows["caller"]
    card = flat(page.split('id="agent-loose"')[1].split("</section>")[0])
    assert "sandbox none: runs unconfined (sandbox: none on the agent)" in card
    caller = flat(page.split('id="agent-caller"')[1].split("</section>")[0])
    assert "sandbox bubblewrap · network host" in caller and "/srv/models (ro)" in caller


def test_agents_json_says_how_each_agent_is_confined(client: TestClient) -> None:
    agents = {a["name"]: a for a in client.get("/api/agents").json()}
    assert {n: (a["unconfined_by"], a["network"]) for n, a in agents.items()} == {
        "boxed": (None, "none"),
        "caller": (None, "host"),
        "loose": ("agent", "none"),
    }
    assert {"path": "/srv/models", "mode": "ro"} in agents["caller"]["mounts"]


def test_a_mission_wide_opt_out_lists_every_agent_that_inherits_it(tmp_path: Path) -> None:
    with git_env():
        mission = _mission(tmp_path / "mission", "none")
    with TestClient(make_app(mission)) as c:
        exposure = c.get("/api/overview").json()["exposure"]
        page = flat(c.get("/").text)
    assert exposure["unconfined"] == [
        {"agent": "caller", "by": "mission"},
        {"agent": "loose", "by": "agent"},
    ]
    assert "2 agent(s) run UNCONFINED" in page
    assert "caller (mission-wide)" in page and "loose (on the agent)" in page


def test_no_banner_when_every_agent_is_confined(tmp_path: Path) -> None:
    with git_env():
        repo = GitRepo(tmp_path / "mission")
        repo.init()
        repo.write_doc("mission.yaml", "Mission", "boxes", {})
        repo.agent("boxed", command=repo.agent_program("boxed", AGENT_CODE))
        repo.commit("one confined agent")
        repo.apply_now(None)
    with TestClient(make_app(Mission(repo.root))) as c:
        page = c.get("/").text
        agents = c.get("/agents").text
    assert 'id="unconfined"' not in page and 'id="network-host"' not in page
    assert "sandbox-none" not in agents
