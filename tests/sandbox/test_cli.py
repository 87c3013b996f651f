"""`videojob run` and the sandbox: fail closed without one, `--sandbox none` as the explicit
opt-out, and nothing secret in what a user sees when scene code goes looking."""

from __future__ import annotations

import pytest
import yaml

from videojob.cli.main import main

from tests.pipeline.conftest import videojob
from tests.sandbox.conftest import SENTINELS, scene
from tests.sandbox.test_hostile import exfiltrating_scene

pytestmark = pytest.mark.render

CIRCLE = scene("self.play(Create(Circle()), run_time=0.3)")


@pytest.fixture
def run(tmp_path, capsys):
    def run(code: str, *extra: str) -> tuple[int, dict | None, str, str]:
        manifest = tmp_path / "job.yaml"
        manifest.write_text(yaml.safe_dump(videojob({"topic": "Sandbox", "code": code, "render": {"quality": "low",
                                                                                               "maxSceneAttempts": 1}})))
        code_ = main(["run", str(manifest), "--output-dir", str(tmp_path / "out"), "--no-progress", *extra])
        captured = capsys.readouterr()
        status = yaml.safe_load(captured.out)["status"] if captured.out.strip() else None
        return code_, status, captured.out, captured.err

    return run


def test_without_bubblewrap_untrusted_code_is_refused_in_one_line(run, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no bwrap to be found
    code, status, _, err = run(CIRCLE)
    assert code == 1
    assert status["phase"] == "Failed" and status.get("sandbox") is None
    failed = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert failed["reason"] == "SandboxUnavailable"
    line = [l for l in err.splitlines() if "SandboxUnavailable" in l]
    assert len(line) == 1
    assert "bubblewrap is not installed" in line[0] and "VIDEOJOB_SANDBOX=none" in line[0]
    assert "\n" not in status["message"] and "apt-get install bubblewrap" in status["message"]
    assert not list((tmp_path / "out").glob("**/*.mp4"))


def test_an_unknown_sandbox_setting_is_invalid_configuration(run, monkeypatch):
    monkeypatch.setenv("VIDEOJOB_SANDBOX", "chroot")
    code, _, _, err = run(CIRCLE)
    assert code == 2 and "VIDEOJOB_SANDBOX" in err


def test_sandbox_none_is_an_explicit_opt_out_that_shows(run):
    code, status, _, err = run(CIRCLE, "--sandbox", "none")
    assert code == 0, err
    assert status["sandbox"] == "none"
    assert "WITHOUT an OS sandbox" in err
    code, status, _, _ = run(scene("self.play(Create(Square()), run_time=0.3)"))
    assert code == 0 and status["sandbox"] == "bubblewrap"


def test_secrets_stay_out_of_status_and_logs(run, planted):
    for log_format in ("text", "json"):
        code, status, out, err = run(exfiltrating_scene(planted, show=False), "--log-format", log_format)
        assert code == 1
        assert "PROBE" in status["message"]  # the scene's own error is quoted back...
        assert status["sandbox"] == "bubblewrap"
        for secret in SENTINELS:  # ...and nothing it went looking for
            assert secret not in out and secret not in err


def test_a_process_can_say_at_start_up_which_isolation_it_has(tmp_path, monkeypatch):
    from videojob.pipeline.sandbox import isolation_report

    isolation, line = isolation_report("auto")
    assert isolation == "bubblewrap" and "seccomp" in line
    assert isolation_report("none")[0] == "none"
    monkeypatch.setenv("PATH", str(tmp_path))
    isolation, line = isolation_report("bubblewrap")
    assert isolation is None and "apt-get install bubblewrap" in line and "\n" not in line
