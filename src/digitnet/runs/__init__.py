"""The run folder: written as training goes (folder), read back (reading), trained into (api),
re-evaluated (evaluate)."""

from digitnet.runs.api import resume, train
from digitnet.runs.evaluate import evaluate_run
from digitnet.runs.folder import CONFIG, METRICS, MODEL, RunWriter
from digitnet.runs.reading import check_data_matches, load_config, load_run, load_run_data, read_metrics

__all__ = ["CONFIG", "METRICS", "MODEL", "RunWriter", "check_data_matches", "evaluate_run", "load_config",
           "load_run", "load_run_data", "read_metrics", "resume", "train"]
