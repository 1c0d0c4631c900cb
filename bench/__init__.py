"""smtpcheck's benchmarks: run by hand (`python -m bench`), never as timed tests in CI."""
