"""The console of a training run: log lines and the progress bar never share a line, and the bar
is closed (at 100 %) before the final "finished" line."""
from __future__ import annotations

import re

from rlpipe.train.run import train
from tests.helpers import tiny


def console_lines(text: str) -> list[str]:
    """What a terminal shows: each line's text after its last carriage return, blanks dropped."""
    shown = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return [s for s in shown if s.strip()]


def test_log_lines_and_progress_bar_do_not_overwrite_each_other(tmp_path, capsys):
    params = tiny(train={"episodes": 8, "progress_bar": True},
                  checkpoint={"interval": 4, "keep_last": 10})
    assert train(params, tmp_path, console=True) == 0
    err = capsys.readouterr().err

    assert "8/8" in err, err                       # the bar was drawn (tqdm writes to stderr)
    logged = [m.start() for m in re.finditer(r"(INFO|WARNING): ", err)]
    assert len(logged) >= 3, err                   # run start, checkpoints, finished
    for at in logged:                               # every log line starts a line of its own
        assert at == 0 or err[at - 1] in "\r\n", repr(err[max(0, at - 60): at + 30])

    shown = console_lines(err)
    assert shown[-1].startswith("INFO: finished: 8 episodes"), shown[-4:]
    bar_done = max(i for i, s in enumerate(shown) if "8/8" in s)
    assert "100%" in shown[bar_done]
    # the bar closed at the last episode: only log lines below it (last checkpoint, finished)
    assert bar_done < len(shown) - 1
    assert all(s.startswith(("INFO: ", "WARNING: ")) for s in shown[bar_done + 1:]), shown[-4:]
