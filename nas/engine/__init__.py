"""The run engine: everything that runs trials on Ray Tune, shared by `nas search`, `nas compare`, the
one-shot strategies and `nas train --seeds`.

    session.py      Ray started or joined for a run (`tune_session`), Tune's environment knobs
    experiment.py   the one `RunConfig` of every run, a stopped experiment restored (after `repair`)
    repair.py       unfinished trials given back the checkpoint Tune's snapshot names
    searcher.py     the one adapter from a strategy (plain ask/tell) to Tune's `Searcher`
    recording.py    trials.json kept current while Tune runs; the run folder a restored generator writes into
    records.py      typed trial records (`TrialStatus`, `SearchTrial`), the run folder's record files
    tune_trials.py  a Ray Tune trial read into a record (its error, failures, proposal order)
    ranking.py      trials in order of merit (the best trial, the leaderboard), the best-so-far curve
    interrupts.py   SIGINT / SIGTERM: Tune's loop stopped cleanly, unfinished trials INTERRUPTED
    ray_watch.py    a signal that ended the run's own Ray too: records written, the process ended at once
    schedulers.py   the trial schedulers of `--scheduler` (ASHA), by name
    loggers.py      JSON, CSV and TensorBoard loggers of every trial
    progress.py     the live view of the trials (and `board.py`: trials' in-epoch progress)
    stopping.py     an interrupted run's trials stopped at once (a stop flag they look for between batches)
    light_actors.py the classes of the board's and the stop flag's Ray actors (standard library only)
    every.py        the throttle of the calls to those actors (`AtMostEvery`)
    verbosity.py    the libraries' own output, quiet unless asked for
    folder.py       a run folder claimed and locked (one driver at a time)

Nothing here is imported by `import nas`: Ray takes seconds to import (`records`, `ranking`, `folder` and
`schedulers` import no Ray: the command line and `nas compare` read run folders with them).
"""
