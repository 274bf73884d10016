"""The run command on embedded defaults: no PostgreSQL, no Redis, one command, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, Api, free_port, requisition_body, wait_for


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, frontier = set(), [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _role_pid(root: int, *argv: str) -> int | None:
    """The pid of the child running ``pettycash <argv>`` (its process group leader)."""
    wanted = "\0".join(("pettycash", *argv)) + "\0"
    for pid in sorted(_descendants(root)):
        try:
            if (Path(f"/proc/{pid}/cmdline").read_text().endswith(wanted)) and _alive(pid):
                return pid
        except OSError:
            continue
    return None


def test_run_command_carries_a_requisition_to_approval_without_redis_or_postgres(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETTYCASH_")}
    env.update(PETTYCASH_VAR_DIR=str(tmp_path / "var"), PETTYCASH_GATEWAY_PORT=str(port), PYTHONUNBUFFERED="1")
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "pettycash", "run"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    output = lambda: (tmp_path / "run.log").read_text(errors="replace")
    try:
        wait_for(lambda: "pettycash is up" in output() or run.poll() is not None, 90, 0.2, "the stack")
        assert run.poll() is None, output()[-4000:]
        assert "embedded" in output()
        processes = _descendants(run.pid)
        assert len(processes) >= 7  # gateway (+ its workers), four service workers, relay, beat

        credentials = (tmp_path / "var" / "demo-credentials.txt").read_text().splitlines()
        tokens = {user: token for user, _password, token in (line.split() for line in credentials)}
        assert tokens["alice"] in output()  # credentials are printed
        api = Api(f"http://127.0.0.1:{port}")
        created = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body())
        assert created.status_code in (201, 202), created.text
        if created.status_code == 202:
            status_url = created.json()["status_url"]
            done = wait_for(
                lambda: (
                    api.get(status_url, tokens["alice"]).json().get("state") == "done"
                    and api.get(status_url, tokens["alice"]).json()
                ),
                30,
            )
            location = f"/api/v1/requisitions/{done['body']['id']}"
        else:
            location = created.headers["Location"]

        def routed() -> dict[str, object] | None:
            body = api.get(location, tokens["alice"]).json()
            return body if body.get("approval") and body["status"] == "pending_approval" else None

        shown = wait_for(routed, 30, 0.1, "the approval case")
        assert shown["approval"]["status"] == "open"  # type: ignore[index]
        assert (tmp_path / "var" / "db" / "approval.sqlite").exists()

        # An operator's nightmare: the approval worker is killed. The supervisor restarts it
        # (and only it), and routing carries on.
        doomed = _role_pid(run.pid, "worker", "approval")
        assert doomed is not None
        os.kill(doomed, signal.SIGKILL)
        wait_for(lambda: "worker-approval restarted" in output(), 30, 0.2, "the restart")
        assert run.poll() is None, output()[-4000:]
        reborn = wait_for(lambda: _role_pid(run.pid, "worker", "approval"), 10, 0.2, "the new worker")
        assert reborn != doomed
        again = api.post("/api/v1/requisitions", tokens["alice"], json=requisition_body())
        assert again.status_code in (201, 202), again.text
        if again.status_code == 201:
            location = again.headers["Location"]
            wait_for(routed, 60, 0.2, "routing by the restarted worker")
        processes = _descendants(run.pid)
    finally:
        run.send_signal(signal.SIGINT)
        try:
            code = run.wait(30)
        except subprocess.TimeoutExpired:
            run.kill()
            raise
        log.close()
    assert code == 0, output()[-4000:]
    wait_for(lambda: not any(_alive(pid) for pid in processes), 10, 0.1, "every child to exit")
