"""The co-search: the NAAS outer loop over accelerators or FPGA designs (``outer_loop``), the
hardware and FPGA design spaces it searches, the sub-network search of the mid loop, the
executors that evaluate candidates, and the run directories that make a search resumable.

Nothing here imports ``codesign.cli`` or ``codesign.report``: a finished run's report is
written by the caller (``codesign.report.write_search_report``)."""
from .executors import SerialExecutor, make_executor
from .outer_loop import SearchConfig, finalize, optimizer_names, run_search, search_space
from .rundir import RunDir

__all__ = ["RunDir", "SearchConfig", "SerialExecutor", "finalize", "make_executor", "optimizer_names",
           "run_search", "search_space"]
