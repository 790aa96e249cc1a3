"""The study layer: study files to cells, optuna storage and trials, workers and the engine.

Bottom up: errors (StudyFileError, StudyError); schema (a study file's keys and types); values
(checking one value); plan (cells, run keys, iso-MAC widths, ``--set``); studyfile (finding,
loading and validating a file); storage (journal or database, ``connect``); optuna_compat (the
one private optuna call); trials (one run as a trial, stale trials); meta (what a study records
at plan time); progress (the progress display); tables (runs.csv, curves.csv); tune (``--tune``);
compare and search (the two kinds of study and their workers); engine (the entry points: run,
status, report, principles page).
"""
