"""Code that runs in the peers' venv (bench/.peers-venv), never in arrayq's: the
peers' jobs, workers and apps, and the drivers that time them. It imports nothing
of arrayq, and arrayq's bench starts it only as subprocesses."""
