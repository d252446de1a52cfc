"""Terminal echo of a headless notebook's progress, for scripts/run-notebooks.py.

A notebook run by nbclient prints nothing to the terminal: its outputs go into the executed copy only, so
`npm run reproduce` was silent for an hour. The kit's progress bars are tslab displays updated in place
(src/display/progress.ts: display_data, then update_display_data with the same transient display_id), and its
steps say what they do in stdout lines ("oracle: reused ...", "Copycat NPD-SL ..."). This echoes both,
prefixed with the notebook's name:

- tty:   the latest progress text as ONE line rewritten in place; a finished bar's last text stays as a line.
- lines: (a log file, CI) the latest progress text at most once per `every` seconds, plus each bar's last
         text when the next one starts or the notebook ends, so logs show life without thousands of lines.
- off:   nothing.

Step lines are printed as they come in every mode but off.
"""
import re
import shutil
import sys
import time

# stdout lines worth showing live: what a step decided or is doing. Tables, configs and plot notes are not.
STEP_LINE = re.compile(
    r"^\s*(oracle|copycat|stolen|steal|npd|pd-sl|cifar-10|tiny imagenet|ms coco|results?|ensemble|member|"
    r"resumed|training|labels?|step|checkpoint)\b",
    re.IGNORECASE,
)
CLEAR = "\r\x1b[K"


def _text(value):
    """nbformat and the wire both allow a string or a list of strings."""
    return "".join(value) if isinstance(value, list) else (value or "")


class TerminalEcho:
    def __init__(self, name, mode="auto", every=60.0, stream=None, clock=time.monotonic):
        self.stream = stream or sys.stdout
        if mode == "auto":
            mode = "tty" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.prefix = f"[{name}] "
        self.every = every
        self.clock = clock
        self.started = clock()
        self.last_line_at = self.started  # lines mode: the first progress line comes after `every` seconds
        self.display_id = None
        self.latest = None       # latest text of the current progress display
        self.printed = None      # the text of it last written as a line (lines mode)
        self.shown = False       # tty: a progress line is on screen, not yet ended by a newline
        self.partial = ""        # stdout text after the last newline

    # --- nbclient messages -------------------------------------------------------------------------
    def message(self, msg):
        if self.mode == "off":
            return
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content = msg.get("content") or {}
        if kind in ("display_data", "update_display_data"):
            display_id = (content.get("transient") or {}).get("display_id")
            text = _text((content.get("data") or {}).get("text/plain")).strip()
            # Only updatable displays are progress; one-shot displays are tables, charts, images.
            if display_id and text:
                self._progress(display_id, text.splitlines()[0])
        elif kind == "stream" and content.get("name") == "stdout":
            lines = (self.partial + _text(content.get("text"))).split("\n")
            self.partial = lines.pop()
            for line in lines:
                if STEP_LINE.match(line):
                    self._step(line.rstrip())

    def close(self):
        """At the end of a notebook: the last bar's final text stays, the cursor is on a fresh line."""
        if self.mode == "off":
            return
        if self.partial and STEP_LINE.match(self.partial):
            self._step(self.partial.rstrip())
        self.partial = ""
        self._end_display()

    # --- output --------------------------------------------------------------------------------------
    def _write(self, s):
        self.stream.write(s)
        self.stream.flush()

    def _fit(self, text):
        width = shutil.get_terminal_size((120, 24)).columns - 1
        line = self.prefix + text
        return line if len(line) <= width else line[: max(10, width - 1)] + "…"

    def _end_display(self):
        if self.mode == "tty":
            if self.shown:
                self._write("\n")
            self.shown = False
        elif self.latest is not None and self.latest != self.printed:
            self._line(self.latest)
        self.display_id = None
        self.latest = None
        self.printed = None

    def _line(self, text):
        self._write(self.prefix + text + "\n")
        self.printed = text
        self.last_line_at = self.clock()

    def _progress(self, display_id, text):
        if display_id != self.display_id:
            self._end_display()
            self.display_id = display_id
        self.latest = text
        if self.mode == "tty":
            self._write(CLEAR + self._fit(text))
            self.shown = True
        elif self.clock() - self.last_line_at >= self.every:
            self._line(text)

    def _step(self, line):
        if self.mode == "tty":
            self._write((CLEAR if self.shown else "") + self.prefix + line + "\n")
            if self.shown and self.latest:
                self._write(self._fit(self.latest))  # the bar goes on below the step line
        else:
            # The bar's newest text first, so the log reads in the order things happened.
            if self.latest is not None and self.latest != self.printed:
                self._line(self.latest)
            self._write(self.prefix + line + "\n")
