"""Suite-wide ordering: the quick studies (the longest tests, each a subprocess) start first, so
that under ``pytest -n`` (setup.cfg) they run beside the short tests instead of at the end."""


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if "/tests/studies/" in item.path.as_posix() else 1)
