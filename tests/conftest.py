"""Suite-wide ordering: the quick studies (the longest tests, each a subprocess) start first, so
that under ``pytest -n`` (setup.cfg) they run beside the short tests instead of at the end."""


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if "/tests/studies/" in item.path.as_posix() else 1)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fire_net():
    """A fire module on an 8x8 map: squeeze ``s`` (1x1, 4 -> 2), the expand layers ``e1`` (1x1,
    2 -> 4) and ``e3`` (3x3 padded, 2 -> 4) both reading it, their concatenation ``cat``
    (8 channels) and ``m`` (1x1, 8 -> 4) reading it."""
    from models.zoo._builder import NetBuilder

    b = NetBuilder("fire", 4, 8)
    b.conv("s", 2, 1)
    mid = b.state()
    b.conv("e1", 4, 1).restore(mid).conv("e3", 4, 3)
    b.c = 8
    b.op("cat", "concat", b.elems, b.elems, inputs=("e1", "e3"))
    b.conv("m", 4, 1)
    return b.build(8)
