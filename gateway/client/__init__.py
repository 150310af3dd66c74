"""The command-line client SSH users run: it speaks the REST API, nothing else."""
