"""The seccomp filter every bubblewrap sandbox runs under, built with libseccomp (PyPI `pyseccomp`).

A deny list on top of the namespaces: the syscalls that reach outside a sandbox or attack the
kernel's less travelled paths, none of which rendering needs. Refused with EPERM, except
`clone3`, refused with ENOSYS so that glibc falls back to `clone`, whose flags a classic filter
can inspect (clone3 passes them in memory a filter cannot read).
"""

from __future__ import annotations

import errno
import os
import tempfile

# Debugging, other processes' memory, kernel keyrings, eBPF, perf, module and kexec loading,
# mounts and namespaces (new ones or joining others), io_uring (whose operations bypass
# seccomp), userfaultfd, handle-based opens, clock/time, swap, reboot, accounting, tty injection.
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "quotactl", "quotactl_fd",
    "swapon", "swapoff", "reboot", "acct", "syslog", "vhangup", "iopl", "ioperm",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "personality", "uselib", "nfsservctl", "get_kernel_syms", "query_module", "create_module",
)

# Namespace flags of clone(2): a process may fork and start threads, never make namespaces.
_CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)
_TIOCSTI = 0x5412


def build_filter():
    import pyseccomp as seccomp

    f = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED:
        try:
            f.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (OSError, ValueError, RuntimeError):
            pass  # a syscall this architecture does not have
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in _CLONE_NAMESPACE_FLAGS:
        f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    f.add_rule(seccomp.ERRNO(errno.EPERM), "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    return f


_BPF: bytes | None = None


def filter_bpf() -> bytes:
    """The compiled BPF program (built once per process)."""
    global _BPF
    if _BPF is None:
        with tempfile.TemporaryFile() as tmp:
            build_filter().export_bpf(tmp)
            tmp.seek(0)
            _BPF = tmp.read()
    return _BPF


def filter_fd() -> int:
    """A readable descriptor holding the BPF program, positioned at its start: what
    `bwrap --seccomp FD` reads. The caller passes it to bwrap and closes it."""
    fd = os.memfd_create("videojob-seccomp", os.MFD_CLOEXEC)
    os.write(fd, filter_bpf())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
