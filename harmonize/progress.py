"""Progress bars for long loops over songs (``stripe eval``): a list that shows a rich bar while iterated.

``tracked(songs, "chords")`` behaves as the list itself (``len``, indexing, truthiness); iterating it draws
one transient bar on stderr, advanced per song, with the count and an ETA. ``enabled=False`` (``--json``,
tests) gives the plain list back.
"""

from __future__ import annotations


class TrackedList(list):
    def __init__(self, items, description: str):
        super().__init__(items)
        self.description = description

    def __iter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        with Progress(TextColumn(f"{self.description:<14}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("songs"), TimeRemainingColumn(), console=console, transient=True,
                      disable=not console.is_terminal) as bar:
            task = bar.add_task(self.description, total=len(self))
            for item in super().__iter__():
                yield item
                bar.advance(task)


def tracked(items, description: str, enabled: bool = True):
    return TrackedList(items, description) if enabled else items
