"""A BPF filter in tcpdump syntax, compiled by libpcap and attached to a capture socket in the kernel.

libpcap is used for its compiler only (``pcap_compile`` on a dead handle),
through ctypes, so no packet passes through it: the kernel runs the compiled
program on every frame before it is queued to the socket, and frames the
filter rejects never cost a system call. Without libpcap installed, a filter
setting is refused at start with a clear error; no filter needs no libpcap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
from functools import cache

from callvault.errors import ConfigError

SO_ATTACH_FILTER = 26
DLT_EN10MB = 1
SNAPLEN = 262_144


class _BpfInsn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_BpfInsn))]


@cache
def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise ConfigError("CALLVAULT_CAPTURE_FILTER needs libpcap (apt-get install libpcap0.8)") from None
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_BpfProgram),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    ]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def compile_filter(expression: str) -> list[tuple[int, int, int, int]]:
    """The classic BPF instructions of ``expression`` for Ethernet frames; ConfigError when it does not compile."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(DLT_EN10MB, SNAPLEN)
    program = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, 0xFFFFFFFF) != 0:
            reason = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
            raise ConfigError(f"CALLVAULT_CAPTURE_FILTER {expression!r} does not compile: {reason}")
        insns = [
            (program.bf_insns[i].code, program.bf_insns[i].jt, program.bf_insns[i].jf, program.bf_insns[i].k)
            for i in range(program.bf_len)
        ]
        lib.pcap_freecode(ctypes.byref(program))
        return insns
    finally:
        lib.pcap_close(handle)


def attach_filter(sock: socket.socket, instructions: list[tuple[int, int, int, int]]) -> None:
    """Have the kernel run the program on the socket's frames (``SO_ATTACH_FILTER``)."""
    array = (_BpfInsn * len(instructions))(*(_BpfInsn(*i) for i in instructions))
    fprog = _SockFprog(len(instructions), ctypes.cast(array, ctypes.POINTER(_BpfInsn)))
    # setsockopt needs the struct's bytes; the kernel copies the program before this returns.
    sock.setsockopt(
        socket.SOL_SOCKET, SO_ATTACH_FILTER, ctypes.string_at(ctypes.addressof(fprog), ctypes.sizeof(fprog))
    )
