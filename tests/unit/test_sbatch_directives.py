import pytest

from gateway.errors import ValidationError
from gateway.sbatch_directives import is_heterogeneous, parse_directives, parse_time_limit


@pytest.mark.parametrize("text,minutes", [
    ("30", 30), ("90", 90), ("1:30", 2), ("2:00:00", 120), ("1-0", 1440), ("1-12", 2160),
    ("1-12:30", 2190), ("0-0:0:59", 1), ("3-00:00:00", 4320),
])
def test_time_formats(text, minutes):
    assert parse_time_limit(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "-5", "UNLIMITED"])
def test_bad_time(text):
    with pytest.raises(ValidationError):
        parse_time_limit(text)


def test_directives_stop_at_first_command():
    script = ("#!/bin/bash\n#SBATCH --time=2:00:00\n#SBATCH -J my job\n# a comment\n"
              "#SBATCH -o /tmp/out-%j.log --partition gpu\n\necho hi\n#SBATCH --account=late\n")
    d = parse_directives(script)
    assert d["time"] == "2:00:00"
    assert d["job-name"] == "my"
    assert d["output"] == "/tmp/out-%j.log"
    assert d["partition"] == "gpu"
    assert "account" not in d


def test_arrays_and_heterogeneous_jobs_are_recognised():
    assert parse_directives("#!/bin/bash\n#SBATCH --array=1-3\necho\n")["array"] == "1-3"
    assert parse_directives("#!/bin/bash\n#SBATCH -a 0-9%2\n")["array"] == "0-9%2"
    het = "#!/bin/bash\n#SBATCH -c 1\n#SBATCH hetjob\n#SBATCH -c 2\nsrun true\n"
    assert is_heterogeneous(het)
    assert is_heterogeneous(het.replace("hetjob", "packjob"))
    assert not is_heterogeneous("#!/bin/bash\n#SBATCH -J hetjob\necho\n#SBATCH hetjob\n")
