"""``codesign agent serve|token``: run the remote board agent (measure latency here for
``remote:http://host:port`` clients) and make its token file."""
from __future__ import annotations

import signal
import sys
import threading

from ._common import emit_json, float_in, int_in, to_json


def _serve(args) -> int:
    from ..validation.agent import is_loopback, serve
    from ..validation.wire import read_token_file

    token = read_token_file(args.token_file)
    if not is_loopback(args.host):
        print(f"codesign agent: warning: listening on {args.host}, reachable from other machines; plain HTTP "
              "carries the token unencrypted, so use it only on a trusted network", file=sys.stderr)

    def ready(server):
        info = {"url": server.url, "backend": server.backend_spec, "max_request_bytes": server.max_bytes,
                "max_seconds": server.max_seconds}
        if args.json:
            print(to_json(info, indent=None), flush=True)
        else:
            print(f"codesign agent: serving {server.backend_spec} at {server.url} (Ctrl-C stops)", flush=True)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if main_thread:
        # SIGTERM stops as Ctrl-C does; SIGINT stops even where the shell started the agent with
        # it ignored (a background job of a script inherits SIG_IGN)
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _interrupt),
                    signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
    try:
        serve(args.backend, args.host, args.port, token, args.max_request_bytes, args.max_seconds,
              quiet=args.quiet, ready=ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("codesign agent: stopped", file=sys.stderr, flush=True)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _token(args) -> int:
    from ..validation.wire import write_token_file

    write_token_file(args.file, overwrite=args.force)
    if args.json:
        emit_json({"token_file": args.file})
    else:
        print(f"wrote a new agent token to {args.file} (mode 600); give the same token to the clients")
    return 0


def register(sub) -> None:
    from ..validation.agent import DEFAULT_HOST, DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, DEFAULT_PORT
    from ..validation.wire import MAX_MEASURE_SECONDS, MAX_REQUEST_BYTES

    p = sub.add_parser("agent", help="run the remote board agent that measures latency for remote: clients")
    s = p.add_subparsers(dest="agent_command", metavar="ACTION")
    s.required = True
    ps = s.add_parser("serve", help="measure latency with one backend for token-holding HTTP clients")
    ps.add_argument("--backend", required=True, metavar="SPEC",
                    help="latency backend, e.g. torch-cpu, analytical:eyeriss")
    ps.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}, this machine only)")
    ps.add_argument("--port", type=int_in(0, 65535), default=DEFAULT_PORT,
                    help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    ps.add_argument("--token-file", required=True, metavar="FILE",
                    help="file holding the token clients must send (see 'codesign agent token')")
    ps.add_argument("--max-request-bytes", type=int_in(1, MAX_REQUEST_BYTES), default=DEFAULT_MAX_BYTES, metavar="N",
                    help=f"largest request body accepted (default {DEFAULT_MAX_BYTES}, at most {MAX_REQUEST_BYTES})")
    ps.add_argument("--max-seconds", type=float_in(0, MAX_MEASURE_SECONDS, lo_open=True), default=DEFAULT_MAX_SECONDS,
                    metavar="S", help=f"longest a measurement may run before it is stopped and answered 504 "
                                      f"(default {DEFAULT_MAX_SECONDS:g}, at most {MAX_MEASURE_SECONDS:g})")
    ps.add_argument("--quiet", action="store_true", help="no per-request log lines on stderr")
    ps.add_argument("--json", action="store_true", help="print the listening address as one JSON line")
    ps.set_defaults(func=_serve)
    pt = s.add_parser("token", help="write a new random token to FILE (mode 600)")
    pt.add_argument("file", metavar="FILE")
    pt.add_argument("--force", action="store_true", help="replace FILE if it exists")
    pt.add_argument("--json", action="store_true")
    pt.set_defaults(func=_token)
