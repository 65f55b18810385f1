"""Benchmarks behind ``codesign bench TARGET``: each module here defines ``NAME``,
``add_arguments(parser)`` and ``run(args) -> dict`` (and optionally ``HELP`` and
``format_text(result)``); ``codesign/cli/bench.py`` discovers them."""
