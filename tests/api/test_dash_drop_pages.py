"""A task with many content drops: its page and its JSON show them a page at a time (issue 12),
so hundreds of drops never make a page of megabytes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from dash_harness import Mission, git_env, make_app
from fastapi.testclient import TestClient
from helpers.mission_repo import GitRepo

from reconciler.commands.plan_apply import Drive

pytestmark = pytest.mark.timeout(60)

N = 250

SPRAYER = f"""
for i in range({N}):
    (OUT / f"part-{{i:04d}}.txt").write_text(f"part {{i}}\\n")
result(status="done", output="sprayed")
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("drop-pages") / "mission"
    with git_env():
        repo = GitRepo(root)
        repo.init()
        repo.write_doc("mission.yaml", "Mission", "drop-pages", {})
        repo.agent("sprayer", command=repo.agent_program("sprayer", SPRAYER))
        repo.task("spray", agent="sprayer", prompt="go")
        repo.commit("a task with many drops")
        repo.apply_now(Drive())
    with TestClient(make_app(Mission(root))) as c:
        yield c


def shown(page: str) -> list[str]:
    return re.findall(r'<a href="/drops/[0-9a-f]{64}">(part-\d{4}\.txt)</a>', page)


def names(first: int, last: int) -> list[str]:
    return [f"part-{i:04d}.txt" for i in range(first, last)]


def test_the_task_page_shows_a_hundred_drops_with_next_and_previous(client: TestClient) -> None:
    first = client.get("/tasks/spray")
    assert first.status_code == 200
    assert shown(first.text) == names(0, 100)
    assert f"drops 1–100 of {N}" in first.text
    assert 'rel="next" href="?offset=100&amp;limit=100"' in first.text
    assert 'rel="prev"' not in first.text

    middle = client.get("/tasks/spray?offset=100")
    assert shown(middle.text) == names(100, 200)
    assert 'rel="prev" href="?offset=0&amp;limit=100"' in middle.text

    last = client.get("/tasks/spray?offset=200")
    assert shown(last.text) == names(200, N)
    assert f"drops 201–{N} of {N}" in last.text
    assert 'rel="next"' not in last.text
    assert len(first.content) < 200_000


def test_the_json_api_pages_drops_with_limit_and_offset(client: TestClient) -> None:
    t = client.get("/api/tasks/spray?limit=30&offset=240").json()
    assert [d["drop"]["path"] for d in t["drops"]] == names(240, N)
    assert (t["drops_total"], t["drops_offset"], t["drops_limit"]) == (N, 240, 30)
    default = client.get("/api/tasks/spray").json()
    assert len(default["drops"]) == 100


@pytest.mark.parametrize("query", ["offset=-1", "limit=0", "limit=100000", "offset=x"])
def test_bad_paging_is_a_client_error(client: TestClient, query: str) -> None:
    assert client.get(f"/api/tasks/spray?{query}").status_code == 422
    assert client.get(f"/tasks/spray?{query}").status_code in (400, 422)


def test_one_big_page_has_no_pager(client: TestClient) -> None:
    page = client.get("/tasks/spray?limit=500").text
    assert len(shown(page)) == N
    assert "data-drops-total" not in page
