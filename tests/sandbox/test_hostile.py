"""Scene code as an attacker writes it, against a real bubblewrap sandbox and real Manim.

Several hostile scenes share one job (and so one sandbox instance) where the test allows: that
is also what a real multi-scene job does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid

import pytest

from videojob.pipeline.sandbox import SandboxLimits

from tests.sandbox.conftest import SENTINELS, host_processes_with, ocr, scene

pytestmark = pytest.mark.render

# Every way in that an audit hook never saw: plain files, the environment, other processes'
# environments, libav reading a file as raw video, a shell through subprocess, ctypes, cffi,
# _posixsubprocess, the service-account token path. What comes back is shown, not hidden.
EXFILTRATE = '''
import os, subprocess, ctypes, glob
found = []

def attempt(label, fn):
    try:
        value = fn()
        found.append(f"{label}={str(value)[:60]}")
    except BaseException as exc:
        found.append(f"{label}!{type(exc).__name__}")

def env_secrets(text):
    return " ".join(l for l in text.splitlines() if any(k in l for k in ("AWS", "KEY", "SECRET", "TOKEN", "KUBERNETES")))

def read_all_environs():
    out = []
    for path in glob.glob("/proc/[0-9]*/environ"):
        try:
            out.append(env_secrets(open(path, "rb").read().replace(b"\\0", b"\\n").decode()))
        except OSError:
            pass
    return " ".join(out)

def av_read(path):
    import av
    c = av.open(path, format="rawvideo", options={"video_size": "4x4", "pixel_format": "gray"})
    return bytes(next(c.demux()))

def shell(cmd):
    return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout

def libc_system(cmd):
    ctypes.CDLL(None).system(cmd.encode())
    return open("libc.txt").read()

def cffi_system(cmd):
    import cffi
    ffi = cffi.FFI()
    ffi.cdef("int system(const char *);")
    ffi.dlopen(None).system(cmd.encode())
    return open("cffi.txt").read()

def posix_fork_exec(cmd):
    import _posixsubprocess
    errpipe_read, errpipe_write = os.pipe()
    out = os.open("fork.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    pid = _posixsubprocess.fork_exec(["/bin/sh", "-c", cmd], [b"/bin/sh"], True, (errpipe_write,), None, None,
                                     -1, -1, -1, out, -1, -1, errpipe_read, errpipe_write, True, False, -1,
                                     None, None, None, -1, None, False)
    os.waitpid(pid, 0)
    return open("fork.txt").read()

CAT = "cat {secret} {home_secret} ~/.aws/credentials /var/run/secrets/kubernetes.io/serviceaccount/token; env"
attempt("file", lambda: open("{secret}").read())
attempt("home", lambda: open("{home_secret}").read())
attempt("tilde", lambda: open(os.path.expanduser("~/.aws/credentials")).read())
attempt("env", lambda: env_secrets("\\n".join(f"{k}={v}" for k, v in os.environ.items())))
attempt("procenv", read_all_environs)
attempt("sa", lambda: open("/var/run/secrets/kubernetes.io/serviceaccount/token").read())
attempt("av", lambda: av_read("{secret}"))
attempt("sh", lambda: env_secrets(shell(CAT)) + shell("cat {secret}"))
attempt("libc", lambda: libc_system(CAT + " > libc.txt 2>&1"))
attempt("cffi", lambda: cffi_system(CAT + " > cffi.txt 2>&1"))
attempt("forkexec", lambda: posix_fork_exec(CAT))
attempt("roots", lambda: sorted(os.listdir("/")))
'''


def exfiltrating_scene(planted, show: bool) -> str:
    prelude = EXFILTRATE.replace("{secret}", str(planted.secret_file)).replace("{home_secret}", str(planted.home_secret))
    if show:
        body = ('lines = VGroup(*[Text(x[:48], font_size=18) for x in ["PROBE"] + found]).arrange(DOWN, aligned_edge=LEFT)\n'
                "self.add(lines.scale_to_fit_height(7.5))\nself.wait(0.2)")
    else:
        body = 'raise RuntimeError("PROBE " + " ; ".join(found))'
    return scene(body, prelude)


async def test_secrets_never_leave_the_sandbox_by_any_path(sandbox, planted, tmp_path):
    async with sandbox.job(1) as job:
        shown = await job.render(exfiltrating_scene(planted, show=True), "A", "low", tmp_path / "shown.mp4")
        told = await job.render(exfiltrating_scene(planted, show=False), "A", "low", tmp_path / "told.mp4")
    assert shown.ok, shown.error
    text = ocr(shown.movie)
    assert "PROBE" in text  # OCR reads the frame: a leaked secret would be read too
    assert not told.ok and "PROBE" in told.error
    # Every attempt ran and came back empty-handed: files absent, environment clean.
    assert "file!FileNotFoundError" in told.error and "home!FileNotFoundError" in told.error
    assert "sa!FileNotFoundError" in told.error and "av!" in told.error
    for secret in SENTINELS:
        assert secret not in text
        assert secret not in told.error
    assert str(planted.home) not in told.error


async def test_writes_outside_scratch_land_nowhere(sandbox, planted, tmp_path):
    marker = uuid.uuid4().hex[:10]
    targets = [tmp_path / f"out-{marker}", planted.home / f"planted-{marker}", f"/tmp/escape-{marker}",
               f"/escape-{marker}", f"/usr/escape-{marker}", f"/etc/escape-{marker}", f"/proc/escape-{marker}"]
    body = "\n".join(
        [f"for path in {[str(t) for t in targets]!r}:",
         "    for write in (lambda p: open(p, 'w').write('x'), lambda p: __import__('av').open(p, 'w', format='mp4')):",
         "        try:",
         "            write(path)",
         "        except Exception:",
         "            pass",
         "self.add(Circle())", "self.wait(0.1)"]
    )
    outcome = await sandbox.render(scene(body), "A", "low", tmp_path / "a.mp4")
    assert outcome.ok, outcome.error
    for target in targets:
        assert not os.path.exists(target), target


async def test_loopback_listeners_of_the_host_hear_nothing(sandbox, tmp_path):
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
    body = f"""import socket
tried = []
def attempt(label, fn):
    try:
        fn()
        tried.append(label + "=sent")
    except Exception as exc:
        tried.append(label + "!" + type(exc).__name__)
attempt("tcp", lambda: socket.create_connection(("127.0.0.1", {tcp_port}), timeout=2).sendall(b"leak"))
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", {udp_port})))
attempt("fastopen", lambda: socket.socket().sendmsg([b"leak"], [], socket.MSG_FASTOPEN, ("127.0.0.1", {tcp_port})))
attempt("libav", lambda: __import__("av").open("tcp://127.0.0.1:{tcp_port}", "w", format="mp4"))
attempt("dns", lambda: socket.getaddrinfo("example.com", 443))
raise RuntimeError(" ".join(tried))"""
    try:
        outcome = await sandbox.render(scene(body), "A", "low", tmp_path / "a.mp4")
        assert not outcome.ok and "tcp!" in outcome.error and "dns!" in outcome.error
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
    finally:
        tcp.close()
        udp.close()


async def test_no_process_outlives_its_scene_or_its_job(sandbox, tmp_path):
    marker = f"videojob-survivor-{uuid.uuid4().hex[:8]}"
    body = f"""import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sh", ["sh", "-c", "sleep 600; : {marker}"])
    os._exit(0)
self.add(Circle())
self.wait(0.1)"""
    async with sandbox.job(1) as job:
        outcome = await job.render(scene(body), "A", "low", tmp_path / "a.mp4")
        assert outcome.ok, outcome.error
        # The scene is over: what it started is gone even though the job's sandbox lives on.
        assert host_processes_with(marker) == []
        hung = await job.render(scene(body + "\nwhile True:\n    pass"), "A", "low", tmp_path / "b.mp4",
                                SandboxLimits(timeout_seconds=5))
        assert hung.kind == "Timeout"
    assert host_processes_with(marker) == []


async def test_kill_attempts_never_reach_the_parent(sandbox, tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        body = f"""import os, signal
for pid in ({os.getpid()}, {bystander.pid}, {os.getppid()}):
    for kill in (lambda p: os.kill(p, signal.SIGKILL), lambda p: signal.pidfd_send_signal(os.pidfd_open(p), signal.SIGKILL)):
        try:
            kill(pid)
        except Exception:
            pass
os.kill(-1, signal.SIGKILL)"""
        outcome = await sandbox.render(scene(body), "A", "low", tmp_path / "a.mp4")
        assert not outcome.ok  # the scene took its own sandbox down with it
        assert bystander.poll() is None  # the host process next door is untouched
        # This process is alive (the test runs) and renders again.
        again = await sandbox.render(scene("self.add(Circle())\nself.wait(0.1)"), "A", "low", tmp_path / "b.mp4")
        assert again.ok, again.error
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


async def test_the_kernel_refuses_escape_syscalls_and_the_root_is_read_only(sandbox, tmp_path):
    body = """import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
calls = {
    "unshare": lambda: libc.unshare(0x10000000),          # CLONE_NEWUSER
    "ptrace": lambda: libc.ptrace(0, 0, 0, 0),             # PTRACE_TRACEME
    "keyctl": lambda: libc.syscall(250, 0, 0, 0, 0),       # keyctl(KEYCTL_GET_KEYRING_ID)
    "bpf": lambda: libc.syscall(321, 0, 0, 0),
    "mount": lambda: libc.mount(b"none", b"/sandbox", b"tmpfs", 0, None),
    "clone3": lambda: libc.syscall(435, 0, 0),
}
seen = []
for name, call in calls.items():
    ctypes.set_errno(0)
    rc = call()
    seen.append(f"{name}={rc}:{errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}")
for path in ("/escape", "/tmp/escape", "/usr/escape"):
    try:
        open(path, "w")
        seen.append(path + "=written")
    except OSError as exc:
        seen.append(path + "!" + type(exc).__name__)
raise RuntimeError(" ".join(seen))"""
    outcome = await sandbox.render(scene(body), "A", "low", tmp_path / "a.mp4")
    for name in ("unshare", "ptrace", "keyctl", "bpf", "mount"):
        assert f"{name}=-1:EPERM" in outcome.error, outcome.error
    assert "clone3=-1:ENOSYS" in outcome.error
    assert "=written" not in outcome.error
