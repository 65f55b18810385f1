"""Fixtures shared by the validation tests."""
import threading

import pytest

from codesign.validation.agent import make_server


@pytest.fixture
def agent(request):
    """Start agents (with the test module's ``TOKEN``) in threads on ephemeral loopback ports;
    shut them all down afterwards."""
    servers = []

    def start(backend, **kw):
        srv = make_server(backend, "127.0.0.1", 0, request.module.TOKEN, quiet=True, **kw)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()
