"""Progress on stderr: a live tqdm bar on a terminal, one plain line per interval in a log."""

import sys

from tqdm import tqdm


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s):
        s = s.replace("\r", "").strip()
        if s:
            self.stream.write(s + "\n")

    def flush(self):
        self.stream.flush()


def progress(total, initial=0, desc=None, stream=None, log_interval=15.0):
    stream = stream or sys.stderr
    if stream.isatty():
        return tqdm(total=total, initial=initial, desc=desc, file=stream, dynamic_ncols=True)
    return tqdm(total=total, initial=initial, desc=desc, file=_Lines(stream), ncols=100,
                ascii=True, mininterval=log_interval, maxinterval=log_interval * 4)
